"""Watched sources: schedules, the watches table, and change detection (no ingest here:
stored sources are written directly, so only what scan() compares is exercised)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kg.errors import ScheduleError, SourceError
from kg.importers import ParsedSource
from kg.sources.document import content_hash
from kg.state import StateDB, WatchRecord
from kg.store import KnowledgeStore
from kg.watch import (
    Scan,
    new_watch,
    parse_duration,
    parse_schedule,
    parse_spec,
    scan,
    watch_target,
)
from tests.webserver import Page, Site, site  # noqa: F401 (site is a fixture)

# -- schedules -------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("30m", 1800), ("1h", 3600), ("2d", 172800),
                                           ("1w", 604800), ("1h30m", 5400), (" 2H ", 7200)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_spec(parse_schedule(every=text).spec).every == seconds


@pytest.mark.parametrize("text", ["", "60", "1x", "h", "0m", "-5m", "1h 30"])
def test_bad_durations_name_the_input(text: str) -> None:
    with pytest.raises(ScheduleError, match="--every"):
        parse_duration(text)


def test_cron_is_standard_crontab() -> None:
    sunday_rule = parse_schedule(cron="0 9 * * 0")
    assert parse_schedule(cron="0 9 * * 7").trigger().fields == sunday_rule.trigger().fields
    saturday = datetime(2026, 1, 3, 12, 0, tzinfo=UTC).astimezone()  # a Saturday
    assert sunday_rule.next_after(saturday).strftime("%a %H:%M") == "Sun 09:00"
    weekdays = parse_schedule(cron="30 8 * * 1-5")
    assert weekdays.next_after(saturday).strftime("%a %H:%M") == "Mon 08:30"
    assert parse_spec(weekdays.spec) == weekdays
    hourly = parse_schedule(cron="0  *  * * *")
    assert hourly.spec == "cron 0 * * * *"


@pytest.mark.parametrize("expr, problem", [("* * *", "5 fields"), ("61 * * * *", "61"),
                                           ("0 0 * * 8", "day of week"), ("0 0 * * fri-mon", "backwards")])
def test_bad_cron(expr: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem) as info:
        parse_schedule(cron=expr)
    assert expr in str(info.value)


def test_exactly_one_schedule() -> None:
    with pytest.raises(ScheduleError, match="not both"):
        parse_schedule(every="1h", cron="0 * * * *")
    with pytest.raises(ScheduleError):
        parse_schedule()


# -- targets and the watches table -------------------------------------------------------


def test_targets(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("x")
    (tmp_path / "kb.ttl").write_text("")
    (tmp_path / "tool.exe").write_text("")
    assert watch_target(str(tmp_path)) == (str(tmp_path.resolve()), "folder")
    assert watch_target(str(tmp_path / "a.md"))[1] == "file"
    assert watch_target(str(tmp_path / "kb.ttl"))[1] == "file"  # imported, not ingested
    assert watch_target("https://example.org/page") == ("https://example.org/page", "url")
    for bad, problem in ((str(tmp_path / "missing"), "no such file or folder"),
                         (str(tmp_path / "tool.exe"), "extension"), ("ftp://host/x", "scheme"),
                         ("https://", "no host")):
        with pytest.raises(SourceError, match=problem) as info:
            watch_target(bad)
        assert bad in str(info.value)


def test_watches_table_added_to_an_old_state_db(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)  # a state.db from before watches: no table at all …
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.commit()
    conn.close()
    with StateDB.open(db) as state:
        assert state.watches() == []
    conn = sqlite3.connect(db)  # … and one whose watches table lacks later columns
    conn.execute("DROP TABLE watches")
    conn.execute("CREATE TABLE watches (id TEXT PRIMARY KEY, target TEXT NOT NULL UNIQUE)")
    conn.execute("INSERT INTO watches VALUES ('old-1', '/data')")
    conn.commit()
    conn.close()
    with StateDB.open(db) as state:
        (old,) = state.watches()
        assert old.target == "/data" and old.state == {} and old.last_run_at is None


def test_watch_records(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    with StateDB.open(tmp_path / "state.db") as state:
        w = new_watch(str(tmp_path / "docs"), parse_schedule(every="1h"))
        assert state.put_watch(w) is True
        assert state.put_watch(WatchRecord(**{**w.__dict__, "schedule": "every 2h"})) is False
        assert state.find_watch(w.id[:4]).schedule == "every 2h"  # type: ignore[union-attr]
        assert state.find_watch(w.target).id == w.id  # type: ignore[union-attr]
        state.record_watch_run(w.id, at="t1", changed=True, error=None, state={"etag": '"1"'})
        state.record_watch_run(w.id, at="t2", changed=False, error="boom", state={"etag": '"1"'})
        got = state.find_watch(w.id)
        assert got is not None
        assert (got.last_run_at, got.last_change_at, got.last_error, got.state) == ("t2", "t1", "boom", {"etag": '"1"'})
        state.delete_watch(w.id)
        assert state.watches() == []


# -- change detection ---------------------------------------------------------------------


def stored(store: KnowledgeStore, uri: str, data: bytes, kind: str = "document") -> None:
    """Record a source as the ingest pipeline would (one triple is enough for scan)."""
    triples = [(f"<{uri}>", "<http://www.w3.org/2000/01/rdf-schema#label>", '"x"')]
    store.write_source(ParsedSource(uri, uri, "document", content_hash(data), triples, {}, content_hash(data)[7:19]),
                       kind=kind)


def actions(result: Scan) -> dict[str, str]:
    return {Path(i.name).name if not i.name.startswith("http") else i.name: i.action for i in result.items}


def test_folder_new_changed_removed(store: KnowledgeStore, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name, text in {"a.txt": "Alpha.", "b.md": "Beta.", "sub/c.html": "<p>Gamma.</p>"}.items():
        (docs / name).write_text(text)
    (docs / "skip.exe").write_text("not a document")
    watch = new_watch(str(docs), parse_schedule(every="1h"))
    assert actions(scan(watch, store.state)) == {"a.txt": "new", "b.md": "new", "c.html": "new"}

    for name in ("a.txt", "b.md", "sub/c.html"):
        stored(store, (docs / name).resolve().as_uri(), (docs / name).read_bytes())
    assert set(actions(scan(watch, store.state)).values()) == {"unchanged"}

    (docs / "a.txt").write_text("Alpha, changed.")
    (docs / "sub" / "c.html").unlink()
    (docs / "d.txt").write_text("Delta.")
    result = scan(watch, store.state)
    assert actions(result) == {"a.txt": "changed", "b.md": "unchanged", "d.txt": "new", "c.html": "removed"}
    assert all(i.how == "ingest" for i in result.items)

    # A vanished watched folder is an error, not a reason to retract everything.
    for f in sorted(docs.rglob("*"), reverse=True):
        f.rmdir() if f.is_dir() else f.unlink()
    docs.rmdir()
    gone = scan(watch, store.state)
    assert gone.items == [] and "gone" in gone.error and str(docs) in gone.error


def test_single_files(store: KnowledgeStore, tmp_path: Path) -> None:
    kb = tmp_path / "kb.ttl"
    kb.write_text("<urn:a> <urn:b> <urn:c> .\n")
    watch = new_watch(str(kb), parse_schedule(every="1h"))
    (item,) = scan(watch, store.state).items
    assert (item.action, item.how) == ("new", "import")
    store.import_file(kb)
    assert scan(watch, store.state).items[0].action == "unchanged"
    kb.unlink()
    (item,) = scan(watch, store.state).items
    assert item.action == "removed" and item.how == "import"
    never = new_watch(str(tmp_path), parse_schedule(every="1h"))
    never = WatchRecord(**{**never.__dict__, "kind": "file", "target": str(tmp_path / "never.txt")})
    (item,) = scan(never, store.state).items
    assert item.action == "failed" and "never.txt: no such file" in item.error


def test_url_conditional_requests(store: KnowledgeStore, site: Site) -> None:
    site.pages["/etag.txt"] = Page(b"Ada Lovelace wrote notes.", etag='"v1"')
    site.pages["/plain.txt"] = Page(b"Grace Hopper wrote COBOL.")
    site.pages["/dated.txt"] = Page(b"Alan Turing.", last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    watches = {p: new_watch(site.url(p), parse_schedule(every="1h")) for p in ("/etag.txt", "/plain.txt", "/dated.txt")}
    first = {p: scan(w, store.state).items[0] for p, w in watches.items()}
    assert {i.action for i in first.values()} == {"new"}
    assert first["/etag.txt"].validators["etag"] == '"v1"'
    assert first["/dated.txt"].validators["last_modified"].startswith("Wed, 01 Jan 2025")
    for p, item in first.items():  # as refresh does once the page is stored
        assert item.document is not None
        stored(store, item.uri, site.pages[p].body)
        watches[p].state = item.validators

    site.requests.clear()
    again = {p: scan(w, store.state).items[0] for p, w in watches.items()}
    assert {i.action for i in again.values()} == {"unchanged"}
    sent = {path: (inm, ims) for path, inm, ims in site.requests}
    assert sent["/etag.txt"] == ('"v1"', None)  # 304
    assert sent["/dated.txt"] == (None, "Wed, 01 Jan 2025 00:00:00 GMT")  # 304
    assert sent["/plain.txt"] == (None, None)  # no validators: fetched, same content hash

    site.pages["/etag.txt"] = Page(b"Ada Lovelace wrote the first program.", etag='"v2"')
    changed = scan(watches["/etag.txt"], store.state).items[0]
    assert changed.action == "changed" and changed.validators["etag"] == '"v2"'
    assert changed.document is not None and "first program" in changed.document.text

    broken = new_watch(site.url("/missing.txt"), parse_schedule(every="1h"))
    (item,) = scan(broken, store.state).items
    assert item.action == "failed" and "HTTP 404" in item.error and "/missing.txt" in item.error

