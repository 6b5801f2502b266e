"""The HTTP service in process (FastAPI's TestClient) over a real Oxigraph store built from
data/sample: chat with evidence, the OpenAI-compatible API (plain and streamed), the
SPARQL 1.1 Protocol with content negotiation, tokens, limits, ingestion, feedback, entity
pages, health and metrics."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import rdflib
from fastapi.testclient import TestClient

from chatbot.answer import open_engine
from chatbot.server import ServerConfig, ServiceState, create_app
from kg.store import KnowledgeStore
from tests.conftest import ROOT, SAMPLE, make_settings

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HANKS_DIRECTORS = {"Robert Zemeckis", "Steven Spielberg", "Frank Darabont", "John Lasseter",
                   "Lee Unkrich"}
DIRECTED = "SELECT ?d WHERE { kg:Forrest_Gump kgr:directed_by ?d }"
ZEMECKIS = "https://w3id.org/kgchat/entity/Robert_Zemeckis"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[TestClient, ServiceState]]:
    # Small limits so that a cartesian product meets them quickly.
    settings = make_settings(reason={"auto": False}, query={"timeout": 0.5, "max_rows": 1000})
    kg = KnowledgeStore.open(tmp_path_factory.mktemp("served") / "store", settings, create=True)
    kg.import_files([SAMPLE / "films.txt", SAMPLE / "people.ttl", SAMPLE / "schema.ttl"])
    state = ServiceState(kg, ServerConfig(token=TOKEN, max_body_bytes=MAX_BODY, max_sessions=3),
                         lambda store: open_engine(store, embedder=embedder)).open()
    with TestClient(create_app(state)) as client:
        yield client, state
    state.close()
    kg.close()


@pytest.fixture(scope="module")
def client(served: tuple[TestClient, ServiceState]) -> TestClient:
    return served[0]


@pytest.fixture(scope="module")
def read_only(served: tuple[TestClient, ServiceState]) -> Iterator[TestClient]:
    """A second app over the same open store and engine, with no token configured."""
    shared = served[1]
    state = ServiceState(shared.store, ServerConfig(), lambda store: shared.engine).open()
    with TestClient(create_app(state)) as c:
        yield c


# -- chat ----------------------------------------------------------------------------------

def test_chat_answers_with_evidence_sources_and_follow_ups(client: TestClient) -> None:
    r = client.post("/chat", json={"session_id": "a", "message": "Who directed the films that Tom Hanks starred in?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "answer" and body["answer_id"]
    answer = body["answer"]
    assert answer["status"] == "answered" and set(answer["entities"]) == HANKS_DIRECTORS
    assert answer["evidence"] and answer["evidence"][0][0]["relation"] == "starred_actors"
    assert any(s["document"].endswith("films.txt") for s in answer["sources"])
    first = client.post("/chat", json={"session_id": "b", "message": "Which films did Robert Zemeckis direct?"})
    assert "Cast Away" in first.json()["answer"]["entities"]
    follow = client.post("/chat", json={"session_id": "b", "message": "and who wrote them?"}).json()
    assert follow["answer"]["status"] == "answered" and "Eric Roth" in follow["answer"]["entities"]


def test_stated_facts_are_stored_only_with_the_token(client: TestClient, read_only: TestClient) -> None:
    said = {"session_id": "sam", "message": "Dana Whitfield leads the platform team.", "speaker": "Sam"}
    for c, headers in ((client, {}), (read_only, AUTH)):
        r = c.post("/chat", json=said, headers=headers).json()
        assert r["kind"] == "statement" and not r["stored"] and "not stored" in r["text"]
    r = client.post("/chat", json=said, headers=AUTH).json()
    assert r["stored"] and r["text"].startswith("Learned") and "Dana Whitfield" in r["text"]
    a = client.post("/chat", json={"session_id": "x", "message": "Who leads the platform team?"}).json()
    assert a["answer"]["entities"] == ["Dana Whitfield"]
    assert any(s["document"].startswith("urn:kgchat:chat:sam-") for s in a["answer"]["sources"])


def test_sessions_are_capped(served: tuple[TestClient, ServiceState]) -> None:
    client, state = served
    for i in range(5):
        client.post("/chat", json={"session_id": f"cap-{i}", "message": "Who directed Big?"})
    assert len(state.sessions) == 3


@pytest.mark.parametrize("payload", [
    '{"session_id": "a", "message": ',                  # not JSON
    '{"session_id": "a"}',                              # no message
    '{"session_id": "a", "message": "   "}',            # blank
    '[1, 2]',
])
def test_malformed_chat_requests_are_4xx_with_an_error(client: TestClient, payload: str) -> None:
    r = client.post("/chat", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()


# -- OpenAI-compatible ---------------------------------------------------------------------

def test_openai_chat_completion(client: TestClient) -> None:
    assert client.get("/v1/models").json()["data"][0]["id"] == "kgchat"
    r = client.post("/v1/chat/completions", json={
        "model": "kgchat", "temperature": 0.2,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Who directed Forrest Gump?"}]}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and body["model"] == "kgchat"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert "Robert Zemeckis" in choice["message"]["content"]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["kgchat"]["answer"]["evidence"]


def test_openai_streaming_sends_chunks_then_done(client: TestClient) -> None:
    with client.stream("POST", "/v1/chat/completions", json={
            "stream": True, "messages": [{"role": "user", "content": "Who directed Forrest Gump?"}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Robert Zemeckis" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["kgchat"]["answer"]


def test_openai_request_without_a_user_message_is_400(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "hi"}]})
    assert r.status_code == 400 and "user message" in r.json()["error"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422


# -- SPARQL protocol -----------------------------------------------------------------------

def test_sparql_get_and_post_forms_give_w3c_json(client: TestClient) -> None:
    want = [{"d": {"type": "uri", "value": ZEMECKIS}}]
    responses = [
        client.get("/sparql", params={"query": DIRECTED}),
        client.post("/sparql", data={"query": DIRECTED}),
        client.post("/sparql", content=DIRECTED, headers={"content-type": "application/sparql-query"}),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/sparql-results+json")
        assert r.json()["results"]["bindings"] == want
    ask = client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"}).json()
    assert ask == {"head": {}, "boolean": True}


def test_sparql_content_negotiation(client: TestClient) -> None:
    def get(query: str, accept: str):
        return client.get("/sparql", params={"query": query}, headers={"accept": accept})

    xml = get(DIRECTED, "application/sparql-results+xml")
    assert xml.headers["content-type"].startswith("application/sparql-results+xml")
    ns = "{http://www.w3.org/2005/sparql-results#}"
    assert ElementTree.fromstring(xml.content).find(f".//{ns}uri").text == ZEMECKIS
    rows = list(csv.reader(io.StringIO(get(DIRECTED, "text/csv").text)))
    assert rows == [["d"], [ZEMECKIS]]
    assert get(DIRECTED, "text/tab-separated-values").text.splitlines() == ["?d", f"<{ZEMECKIS}>"]
    # q-values choose; a wildcard falls back to JSON
    assert get(DIRECTED, "text/csv;q=0.5, application/sparql-results+xml").headers["content-type"].startswith(
        "application/sparql-results+xml")
    assert get(DIRECTED, "*/*").headers["content-type"].startswith("application/sparql-results+json")
    construct = "CONSTRUCT { ?f kgr:directed_by ?d } WHERE { ?f kgr:directed_by ?d }"
    for accept, fmt in (("text/turtle", "turtle"), ("application/n-triples", "nt")):
        r = get(construct, accept)
        assert r.status_code == 200 and r.headers["content-type"].startswith(accept)
        g = rdflib.Graph().parse(data=r.text, format=fmt)
        assert (rdflib.URIRef("https://w3id.org/kgchat/entity/Forrest_Gump"),
                rdflib.URIRef("https://w3id.org/kgchat/relation/directed_by"), rdflib.URIRef(ZEMECKIS)) in g
    for query, accept in ((DIRECTED, "image/png"), (construct, "text/csv")):
        r = get(query, accept)
        assert r.status_code == 406 and "error" in r.json()


def test_sparql_update_needs_the_token(client: TestClient, read_only: TestClient) -> None:
    insert = 'INSERT DATA { GRAPH <urn:test:g> { kg:Big kgr:directed_by kg:Penny_Marshall } }'
    form = {"update": insert}
    assert client.post("/sparql", data=form).status_code == 401
    assert client.post("/sparql", data=form).headers["www-authenticate"].startswith("Bearer")
    assert client.post("/sparql", data=form, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert read_only.post("/sparql", data=form, headers=AUTH).status_code == 403
    assert client.get("/sparql", params={"update": insert}, headers=AUTH).status_code == 400
    ask = "ASK { kg:Big kgr:directed_by kg:Penny_Marshall }"
    assert client.get("/sparql", params={"query": ask}).json()["boolean"] is False
    r = client.post("/sparql", content=insert, headers={**AUTH, "content-type": "application/sparql-update"})
    assert r.status_code == 200, r.text
    assert client.get("/sparql", params={"query": ask}).json()["boolean"] is True
    # the QA engine was re-opened on the new graph
    a = client.post("/chat", json={"session_id": "u", "message": "Who directed Big?"}).json()
    assert "Penny Marshall" in a["answer"]["entities"]
    r = client.post("/sparql", data={"update": "DROP GRAPH <urn:test:g>"}, headers=AUTH)
    assert r.status_code == 200 and client.get("/sparql", params={"query": ask}).json()["boolean"] is False


def test_sparql_refusals_and_errors(client: TestClient) -> None:
    r = client.get("/sparql", params={"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }"})
    assert r.status_code == 403 and "SERVICE" in r.json()["error"]
    r = client.get("/sparql", params={"query": "SELECT ?x WHERE { ?x kgr:directed_by }"})
    assert r.status_code == 400 and "invalid SPARQL query" in r.json()["error"]
    assert client.get("/sparql").status_code == 400
    assert client.get("/sparql", params={"query": DIRECTED, "default-graph-uri": "urn:x"}).status_code == 400
    assert client.post("/sparql", content=DIRECTED, headers={"content-type": "text/plain"}).status_code == 415


def test_cartesian_products_meet_the_row_cap_and_the_timeout(client: TestClient) -> None:
    r = client.get("/sparql", params={"query": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"})
    assert r.status_code == 200 and r.headers["x-kgchat-truncated"] == "true"
    assert len(r.json()["results"]["bindings"]) == 1000
    values = " ".join(str(i) for i in range(250))
    slow = (f"SELECT (COUNT(*) AS ?n) WHERE {{ VALUES ?a {{ {values} }} VALUES ?b {{ {values} }} "
            f"VALUES ?c {{ {values} }} }}")
    r = client.get("/sparql", params={"query": slow})
    assert r.status_code == 503 and "longer than" in r.json()["error"]
    # the service goes on answering
    assert client.get("/sparql", params={"query": DIRECTED}).status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"


def test_bodies_over_the_cap_are_413(client: TestClient) -> None:
    big = b"x" * (MAX_BODY + 1)
    r = client.post("/ingest", files={"files": ("big.txt", big, "text/plain")}, headers=AUTH)
    assert r.status_code == 413 and "error" in r.json()

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap counts as the body streams
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"#" * 1024

    r = client.post("/sparql", content=chunked(), headers={"content-type": "application/sparql-query"})
    assert r.status_code == 413 and "error" in r.json()


# -- ingest, feedback, entities, health, metrics -------------------------------------------

def test_ingest_uploads_and_urls(client: TestClient) -> None:
    doc = (ROOT / "data" / "sample" / "docs" / "zemeckis.txt").read_bytes()
    upload = {"files": ("../../zemeckis.txt", doc, "text/plain")}
    assert client.post("/ingest", files=upload).status_code == 401
    r = client.post("/ingest", files=upload, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new"] == 1 and body["facts"] > 0 and body["stored_as"] == ["zemeckis.txt"]
    again = client.post("/ingest", files=upload, headers=AUTH).json()
    assert again["unchanged"] == 1 and again["new"] == 0
    # the new document is cited: the text index was refreshed
    a = client.post("/chat", json={"session_id": "i", "message": "Where was Robert Zemeckis born?"}).json()
    assert any(s["kind"] == "passage" and "zemeckis.txt" in s["document"] for s in a["answer"]["sources"])
    r = client.post("/ingest", json={"urls": ["file:///etc/passwd"]}, headers=AUTH)
    assert r.status_code == 400 and "http(s)" in r.json()["error"]
    r = client.post("/ingest", json={"urls": ["http://127.0.0.1:1/nothing.txt"]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["failed"] == 1 and r.json()["errors"]
    assert client.post("/ingest", content=b"{", headers={**AUTH, "content-type": "application/json"}).status_code == 422
    assert client.post("/ingest", json={"links": []}, headers=AUTH).status_code == 422


def test_feedback_is_appended_to_a_jsonl_file(served: tuple[TestClient, ServiceState]) -> None:
    client, state = served
    a = client.post("/chat", json={"session_id": "f", "message": "Who directed Forrest Gump?"}).json()
    r = client.post("/feedback", json={"answer_id": a["answer_id"], "correct": True})
    assert r.status_code == 201, r.text
    r = client.post("/feedback", json={"session_id": "f", "question": "Who wrote Big?", "answer": "Nobody.",
                                       "correct": False, "right_answer": "Gary Ross and Anne Spielberg"})
    assert r.status_code == 201
    rows = [json.loads(x) for x in (state.store.root / "feedback" / "feedback.jsonl").read_text().splitlines()]
    assert rows[-2]["question"] == "Who directed Forrest Gump?" and rows[-2]["correct"] is True
    assert rows[-1]["right_answer"] == "Gary Ross and Anne Spielberg" and rows[-1]["id"]
    assert client.post("/feedback", json={"correct": True}).status_code == 422
    assert client.post("/feedback", json={"session_id": "f", "correct": True}).status_code == 422
    assert client.post("/feedback", content=b"{nope", headers={"content-type": "application/json"}).status_code == 422


def test_entity_neighbourhood(client: TestClient) -> None:
    r = client.get("/entities/Tom_Hanks")
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["label"] == "Tom Hanks" and e["iri"].endswith("/entity/Tom_Hanks")
    assert {"relation_label": "born in", "label": "Concord"}.items() <= next(
        x for x in e["outgoing"] if x["relation"].endswith("born_in")).items()
    starred = {x["label"] for x in e["incoming"] if x["relation"].endswith("starred_actors")}
    assert {"Forrest Gump", "Cast Away"} <= starred
    same = client.get("/entities/" + quote("https://w3id.org/kgchat/entity/Tom_Hanks", safe=""))
    assert same.json()["iri"] == e["iri"]
    missing = client.get("/entities/No_Such_Entity")
    assert missing.status_code == 404 and "error" in missing.json()


def test_health_docs_metrics_and_unknown_routes(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["read_only"] is False
    assert "/sparql" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    client.get("/sparql", params={"query": DIRECTED})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'kgchat_http_requests_total{route="/sparql",method="GET",status="200"}' in text
    assert 'kgchat_http_request_duration_seconds_bucket{route="/sparql",le="+Inf"}' in text
    assert "# TYPE kgchat_http_request_duration_seconds histogram" in text
    triples = next(line for line in text.splitlines() if line.startswith("kgchat_graph_triples "))
    assert float(triples.split()[1]) > 100
    lost = client.get("/no/such/page")
    assert lost.status_code == 404 and lost.json() == {"error": "Not Found"}


def test_a_refresh_hook_writes_and_reloads_while_answers_wait(served: tuple[TestClient, ServiceState]) -> None:
    """The contract `learners.refresh.refresh` gets: ``write_lock`` around its writes, then
    ``after_write`` (= ``state.reload``) once the lock is released. A question asked during
    the write waits, and is answered on the new graph with matching indexes, never a mix."""
    client, state = served
    started = threading.Event()

    def fake_refresh(store: KnowledgeStore, *, write_lock, after_write) -> None:
        with write_lock():
            started.set()
            store.query("INSERT DATA { GRAPH <urn:test:refresh> { kg:Splash kgr:directed_by kg:Ron_Howard . "
                        "kg:Ron_Howard rdfs:label \"Ron Howard\" . kg:Splash rdfs:label \"Splash\" } }",
                        allow_update=True)
            time.sleep(0.3)  # the question arrives while the graph is half-way
        time.sleep(0.2)  # refresh records its run between releasing the lock and after_write
        after_write()

    worker = threading.Thread(target=fake_refresh, args=(state.store,),
                              kwargs={"write_lock": state.write_lock, "after_write": state.reload})
    worker.start()
    assert started.wait(5)
    a = client.post("/chat", json={"session_id": "r", "message": "Who directed Splash?"}).json()
    worker.join()
    assert a["answer"]["entities"] == ["Ron Howard"]
    client.post("/sparql", data={"update": "DROP GRAPH <urn:test:refresh>"}, headers=AUTH)
    a = client.post("/chat", json={"session_id": "r", "message": "Who directed Splash?"}).json()
    assert a["answer"]["status"] == "unknown"
