"""The chat page at ``/``, end to end: ``kgchat serve`` as a real process over the sample
films, driven through headless Chromium (Debian's ``chromium`` and ``chromium-driver``;
``.ci/install-system-deps`` installs them). A multi-hop question is asked through the page;
its answer, evidence, sources and neighbourhood picture show; a document carrying markup
shows as text and runs nothing; a correction typed after "wrong?" reaches /feedback; a fact
stated with the page's token is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kg.store import KnowledgeStore
from tests.chatbot.test_server_process import start_serve, stop_serve
from tests.conftest import SAMPLE, make_settings

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TOKEN = "web-test-token"
QUESTION = "Who directed the films that Tom Hanks starred in?"
# Text a hostile document could carry: it must show as these characters and never run.
MARKUP = ("<img src=x onerror=\"window.__kgchatXss='img';alert('img')\"> "
          "<script>window.__kgchatXss='script';alert('script')</script>")
NOTE = f"Tom Hanks keeps a film diary. {MARKUP} The diary lists Forrest Gump and Cast Away.\n"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
                              "/usr/bin/chromedriver): run .ci/install-system-deps as root"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package (pip install -e '.[test]')")
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The base URL of a running ``kgchat serve`` (with a token) and its store directory."""
    store = tmp_path_factory.mktemp("web") / "store"
    with KnowledgeStore.open(store, make_settings(reason={"auto": False}), create=True) as kg:
        kg.import_files([SAMPLE / "films.txt", SAMPLE / "people.ttl", SAMPLE / "schema.ttl"])
    proc, base = start_serve(store, token=TOKEN)
    try:
        # The hostile document goes in as any upload does; its passage is then cited.
        r = httpx.post(f"{base}/ingest", files={"files": ("diary.txt", NOTE.encode(), "text/plain")},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        assert r.status_code == 200 and r.json()["new"] == 1, r.text
        yield base, store
    finally:
        out = stop_serve(proc)
        assert proc.returncode == 0, out


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def _no_alert(driver: webdriver.Chrome) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"document text ran as script: an alert says {text!r}")


def test_the_page_asks_shows_evidence_neighbourhood_and_takes_a_correction(
        server: tuple[str, Path], browser: webdriver.Chrome) -> None:
    base, store = server
    wait = WebDriverWait(browser, 30)
    browser.get(base + "/")
    assert browser.title == "kgchat"
    session = browser.execute_script("return sessionStorage.getItem('kgchat.session')")
    assert session and session.startswith("web-")

    # Ask through the page.
    box = browser.find_element(By.ID, "message")
    box.send_keys(QUESTION)
    browser.find_element(By.ID, "send").click()
    turn = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#conversation .turn[data-answer-id]")))
    assert turn.find_element(By.CSS_SELECTOR, ".question").text == QUESTION
    answer = turn.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert "Robert Zemeckis" in answer and "Steven Spielberg" in answer, answer

    # Evidence, hop by hop: entity —relation→ entity.
    hops = [h.text for h in turn.find_elements(By.CSS_SELECTOR, ".evidence .hop")]
    assert any("—starred_actors→ Tom Hanks" in h for h in hops), hops
    assert any("—directed_by→ Robert Zemeckis" in h for h in hops), hops

    # Sources: the imported file, and the ingested document's passage shown as text.
    sources = [s.text for s in turn.find_elements(By.CSS_SELECTOR, ".sources .source")]
    assert any("films.txt" in s for s in sources), sources
    diary = next((s for s in sources if "diary.txt" in s), None)
    assert diary is not None, sources
    assert "<img src=x onerror=" in diary and "<script>" in diary, diary
    assert not browser.find_elements(By.CSS_SELECTOR, "#conversation img, #conversation script")
    assert browser.execute_script("return window.__kgchatXss === undefined")
    _no_alert(browser)

    # The neighbourhood of the first answer entity, drawn as SVG; a neighbour re-centres it.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#graph .node.neighbour")) >= 2)
    centre = browser.find_element(By.CSS_SELECTOR, "#graph .node.centre")
    assert centre.get_attribute("data-iri").endswith("/entity/Robert_Zemeckis")
    assert browser.find_elements(By.CSS_SELECTOR, "#graph line.edge")
    labels = [t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "#graph .edge-label")]
    assert any("directed" in t for t in labels), labels
    cast_away = browser.find_element(By.CSS_SELECTOR, "#graph .node.neighbour[data-iri$='/entity/Cast_Away']")
    cast_away.click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#graph .node.centre")
               .get_attribute("data-iri").endswith("/entity/Cast_Away"))

    # "wrong?" → type the right answer → POST /feedback. Without the token it is queued
    # for review (with it, the graph would be corrected at once).
    field = turn.find_element(By.CSS_SELECTOR, ".feedback input.right-answer")
    assert not field.is_displayed()  # until "wrong?" is pressed
    turn.find_element(By.CSS_SELECTOR, ".feedback button.wrong").click()
    assert field.is_displayed()
    field.send_keys("Robert Zemeckis, Steven Spielberg and others")
    turn.find_element(By.CSS_SELECTOR, ".feedback button.send-correction").click()
    status = turn.find_element(By.CSS_SELECTOR, ".feedback .status")
    wait.until(lambda d: status.text)
    assert status.text.startswith("Thank you: your correction was recorded"), status.text
    assert not field.is_displayed()
    answer_id = turn.get_attribute("data-answer-id")
    rows = [json.loads(line) for line in (store / "feedback" / "feedback.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r.get("answer_id") == answer_id and "decision" not in r]
    assert mine and mine[-1]["correct"] is False, rows
    assert mine[-1]["right_answer"] == "Robert Zemeckis, Steven Spielberg and others"
    assert mine[-1]["question"] == QUESTION and mine[-1]["session_id"] == session

    # The token (typed once, kept for the tab) lets the page store a stated fact; Enter sends.
    browser.find_element(By.CSS_SELECTOR, "details.settings summary").click()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    box.send_keys("Dana Whitfield leads the platform team.", Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#conversation .turn[data-answer-id]")) == 2)
    said = browser.find_elements(By.CSS_SELECTOR, "#conversation .turn")[-1]
    assert "Dana Whitfield" in said.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert "Stored in the graph." in said.text, said.text
    _no_alert(browser)


def test_the_page_docs_and_lookup_load_nothing_from_elsewhere(server: tuple[str, Path]) -> None:
    base, _ = server
    page = httpx.get(base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    docs = httpx.get(base + "/docs")
    assert docs.status_code == 200
    for text in (page.text, docs.text, httpx.get(base + "/redoc").text):
        assert "https://" not in text and "http://" not in text.replace(base, "")
    assert httpx.get(base + "/static/docs/swagger-ui-bundle.js").status_code == 200
    assert httpx.get(base + "/static/app.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/static/..%2Fweb.py", "/static/.hidden", "/static/nothing.js"):
        assert httpx.get(base + bad).status_code == 404
    found = httpx.get(base + "/lookup", params={"label": "tom hanks"}).json()["entities"]
    assert [e["iri"].rsplit("/", 1)[-1] for e in found] == ["Tom_Hanks"]
    assert httpx.get(base + "/lookup", params={"label": "Nobody At All"}).json()["entities"] == []



def test_the_api_docs_render_offline(server: tuple[str, Path], browser: webdriver.Chrome) -> None:
    """Swagger UI from the fastapi-offline package, not a CDN (this machine has none)."""
    base, _ = server
    browser.get(base + "/docs")
    WebDriverWait(browser, 30).until(lambda d: any(
        e.text == "/chat" for e in d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")))
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")
