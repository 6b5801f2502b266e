"""``state.db``: the SQLite book-keeping beside the graph.

Tables: ``sources`` (one row per imported source and its current graph version),
``journal`` (writes in flight, so a crash can be rolled back or forward on the next open),
``changes`` (what each run did, newest last), ``runs``, ``meta`` (small key/value facts such
as when inferences were last computed) and ``watches`` (sources ``kgchat refresh`` looks at,
with their schedules and what the last look found). Every method commits its own
transaction. Tables and columns added by later versions are created on open, so an older
state.db keeps working.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    graph TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    version TEXT NOT NULL,
    triple_count INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT NOT NULL,
    new_graph TEXT NOT NULL,
    old_graph TEXT,
    record TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    source_id TEXT,
    uri TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watches (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL UNIQUE
);
"""
# Every watches column but the key, so a table from an older version gains what it lacks.
WATCH_COLUMNS = {
    "kind": "TEXT NOT NULL DEFAULT 'file'",
    "schedule": "TEXT NOT NULL DEFAULT 'every 1h'",
    "added_at": "TEXT NOT NULL DEFAULT ''",
    "last_run_at": "TEXT",
    "last_change_at": "TEXT",
    "last_error": "TEXT",
    "state": "TEXT NOT NULL DEFAULT '{}'",
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SourceRecord:
    id: str
    uri: str
    kind: str
    format: str
    graph: str
    content_hash: str
    version: str
    triple_count: int
    imported_at: str
    updated_at: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "SourceRecord":
        data = dict(row)
        data["options"] = json.loads(data.get("options") or "{}")
        return cls(**data)


@dataclass
class WatchRecord:
    """A watched file, folder or URL: ``schedule`` is ``every <duration>`` or ``cron <expr>``;
    ``state`` holds what the next look compares against (a URL's ETag / Last-Modified)."""

    id: str
    target: str      # an absolute path, or an http(s) URL
    kind: str        # file | folder | url
    schedule: str
    added_at: str
    last_run_at: str | None = None
    last_change_at: str | None = None
    last_error: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "WatchRecord":
        data = dict(row)
        data["state"] = json.loads(data.get("state") or "{}")
        return cls(**data)


@dataclass
class JournalEntry:
    id: int
    source_id: str
    new_graph: str
    old_graph: str | None
    record: SourceRecord
    started_at: str


@dataclass
class Change:
    at: str
    action: str
    source_id: str | None
    uri: str | None
    detail: str


class StateDB:
    """Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> "StateDB":
        # check_same_thread=False: the service answers from a thread pool (SQLite is built
        # serialized); its writers are serialized by the service's write lock.
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        have = {r["name"] for r in conn.execute("PRAGMA table_info(watches)")}
        for name, decl in WATCH_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE watches ADD COLUMN {name} {decl}")
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "StateDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sources ------------------------------------------------------------------
    def get_source(self, key: str) -> SourceRecord | None:
        """By id or URI, exactly (an indexed lookup)."""
        row = self._conn.execute(
            "SELECT * FROM sources WHERE id = ? OR uri = ?", (key, key)
        ).fetchone()
        return SourceRecord.from_row(row) if row else None

    def find_source(self, key: str) -> SourceRecord | None:
        """By id, URI, or an id prefix that names exactly one source (for people typing)."""
        record = self.get_source(key)
        if record is None:
            rows = self._conn.execute(
                "SELECT * FROM sources WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
            record = SourceRecord.from_row(rows[0]) if len(rows) == 1 else None
        return record

    def sources(self) -> list[SourceRecord]:
        rows = self._conn.execute("SELECT * FROM sources ORDER BY imported_at, id").fetchall()
        return [SourceRecord.from_row(r) for r in rows]

    def versions(self, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
        """(id, version) of every source of these kinds, by id."""
        marks = ",".join("?" * len(kinds))
        rows = self._conn.execute(
            f"SELECT id, version FROM sources WHERE kind IN ({marks}) ORDER BY id", kinds).fetchall()
        return [(r["id"], r["version"]) for r in rows]

    # -- journal: a source write in flight ----------------------------------------
    def begin_write(self, record: SourceRecord, old_graph: str | None) -> int:
        cur = self._conn.execute(
            "INSERT INTO journal (source_id, new_graph, old_graph, record, started_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (record.id, record.graph, old_graph, record.to_json(), now_iso()),
        )
        return int(cur.lastrowid)

    def commit_write(self, journal_id: int, record: SourceRecord, action: str, detail: str) -> None:
        """Make the written graph the source's current one, in one SQLite transaction."""
        with self._tx():
            self._conn.execute("DELETE FROM sources WHERE id = ?", (record.id,))
            self._conn.execute(
                "INSERT INTO sources (id, uri, kind, format, graph, content_hash, version, "
                "triple_count, imported_at, updated_at, options) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (record.id, record.uri, record.kind, record.format, record.graph,
                 record.content_hash, record.version, record.triple_count,
                 record.imported_at, record.updated_at, json.dumps(record.options)),
            )
            self._conn.execute("DELETE FROM journal WHERE id = ?", (journal_id,))
            self._log(action, record.id, record.uri, detail)

    def abort_write(self, journal_id: int) -> None:
        self._conn.execute("DELETE FROM journal WHERE id = ?", (journal_id,))

    def pending_writes(self) -> list[JournalEntry]:
        rows = self._conn.execute("SELECT * FROM journal ORDER BY id").fetchall()
        return [
            JournalEntry(r["id"], r["source_id"], r["new_graph"], r["old_graph"],
                         SourceRecord(**json.loads(r["record"])), r["started_at"])
            for r in rows
        ]

    def delete_source(self, record: SourceRecord, detail: str = "") -> None:
        with self._tx():
            self._conn.execute("DELETE FROM sources WHERE id = ?", (record.id,))
            self._log("removed", record.id, record.uri, detail)

    # -- changes and meta ---------------------------------------------------------
    def log(self, action: str, source_id: str | None, uri: str | None, detail: str = "") -> None:
        self._log(action, source_id, uri, detail)

    def _log(self, action: str, source_id: str | None, uri: str | None, detail: str) -> None:
        self._conn.execute(
            "INSERT INTO changes (at, action, source_id, uri, detail) VALUES (?,?,?,?,?)",
            (now_iso(), action, source_id, uri, detail),
        )

    def recent_changes(self, limit: int = 10) -> list[Change]:
        rows = self._conn.execute(
            "SELECT at, action, source_id, uri, detail FROM changes ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Change(**dict(r)) for r in rows]

    # -- runs: one row per import / reasoning run -----------------------------------
    def start_run(self, kind: str) -> int:
        cur = self._conn.execute("INSERT INTO runs (kind, started_at) VALUES (?, ?)", (kind, now_iso()))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
            (now_iso(), status, json.dumps(summary, sort_keys=True), run_id),
        )

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r, summary=json.loads(r["summary"])) for r in rows]

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value),
        )

    def delete_meta(self, key: str) -> None:
        self._conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- watches: what `kgchat refresh` looks at -------------------------------------
    def put_watch(self, watch: WatchRecord) -> bool:
        """Add a watch, or change the schedule of the one on the same target; True if new."""
        new = self._conn.execute("SELECT 1 FROM watches WHERE id = ?", (watch.id,)).fetchone() is None
        self._conn.execute(
            "INSERT INTO watches (id, target, kind, schedule, added_at, state) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET schedule = excluded.schedule, kind = excluded.kind",
            (watch.id, watch.target, watch.kind, watch.schedule, watch.added_at, json.dumps(watch.state)),
        )
        return new

    def watches(self) -> list[WatchRecord]:
        rows = self._conn.execute("SELECT * FROM watches ORDER BY added_at, id").fetchall()
        return [WatchRecord.from_row(r) for r in rows]

    def find_watch(self, key: str) -> WatchRecord | None:
        """By id, target, or an id prefix that names exactly one watch."""
        rows = self._conn.execute("SELECT * FROM watches WHERE id = ? OR target = ?", (key, key)).fetchall()
        if not rows:
            rows = self._conn.execute(
                "SELECT * FROM watches WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
        return WatchRecord.from_row(rows[0]) if len(rows) == 1 else None

    def delete_watch(self, watch_id: str) -> None:
        self._conn.execute("DELETE FROM watches WHERE id = ?", (watch_id,))

    def record_watch_run(self, watch_id: str, *, at: str, changed: bool, error: str | None,
                         state: dict[str, Any]) -> None:
        """What one look at a watch found; ``last_change_at`` moves only when it changed."""
        self._conn.execute(
            "UPDATE watches SET last_run_at = ?, last_error = ?, state = ?, "
            "last_change_at = CASE WHEN ? THEN ? ELSE last_change_at END WHERE id = ?",
            (at, error, json.dumps(state, sort_keys=True), int(changed), at, watch_id),
        )

    # -- helpers -------------------------------------------------------------------
    def _tx(self) -> "_Transaction":
        return _Transaction(self._conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


