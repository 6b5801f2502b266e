"""A user's knowledge store: the graph, its sources and their provenance.

::

    <store>/graph/        Oxigraph (the embedded default backend)
    <store>/state.db      sources, write journal, change log
    <store>/kgchat.toml   configuration

Each source lives in its own named graph, one per content version
(``…/graph/<source-id>/<version>``), described in the provenance graph with PROV-O.
Writing a source is all-or-nothing:

1. the intent is journaled in state.db;
2. small sources: one SPARQL update inserts the new graph, drops the old one and swaps the
   provenance (one transaction, readers never see a mix);
   big sources (> ``store.bulk_threshold`` triples): bulk-load the new graph, then the same
   update drops the old graph and swaps the provenance;
3. state.db records the new version and closes the journal entry.

A crash anywhere is repaired by :meth:`KnowledgeStore.recover` on the next open: if the
provenance already names the new graph the write is rolled forward, otherwise the new
graph is dropped and the store is exactly as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Sequence

from kg.backends import GraphBackend, Triple, open_backend
from kg.backends.base import DEFAULT_GRAPH, insert_data
from kg.config import CONFIG_FILE, DEFAULT_TOML, Settings
from kg.errors import KgchatError, SourceError, StoreError, StoreNotFoundError
from kg.importers import ParsedSource, nt_literal, open_source, parse_source
from kg.reason import ReasonSummary, materialise, update_incrementally
from kg.sparql import QueryResult, check_allowed
from kg.state import SourceRecord, StateDB, now_iso
from kg.vocab import PROV, RDF, RDFS, XSD, Vocabulary, source_id_for

log = logging.getLogger(__name__)

STATE_FILE = "state.db"
GRAPH_DIR = "graph"


@dataclass
class ImportReport:
    path: str
    action: str  # added | replaced | unchanged | failed
    source_id: str = ""
    graph: str = ""
    triples: int = 0
    seconds: float = 0.0
    error: str = ""
    inferred: "ReasonSummary | None" = None
    added: int = 0      # triples in the new version and not in the old one
    retracted: int = 0  # triples in the old version and not in the new one


@dataclass
class StoreStatus:
    backend: str
    location: str
    triples: int
    asserted: int
    inferred: int
    provenance: int
    entities: int
    sources: int
    named_graphs: int
    reasoned_at: str | None
    last_changes: list[Any] = field(default_factory=list)
    last_runs: list[dict[str, Any]] = field(default_factory=list)


class KnowledgeStore:
    """Open with :meth:`open` and close with :meth:`close` (or use ``with``)."""

    def __init__(self, root: Path, settings: Settings, backend: GraphBackend, state: StateDB):
        self.root = root
        self.settings = settings
        self.backend = backend
        self.state = state
        self.vocab = Vocabulary(settings.store.base_iri)
        self.recovered: list[str] = []  # what recover() repaired when the store was opened

    # -- lifecycle -----------------------------------------------------------------
    @classmethod
    def open(cls, root: Path, settings: Settings, *, create: bool = False) -> "KnowledgeStore":
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a store directory")
        if not create and not (root / STATE_FILE).exists():
            raise StoreNotFoundError(root)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / CONFIG_FILE).exists():
            (root / CONFIG_FILE).write_text(DEFAULT_TOML, encoding="utf-8")
        state = StateDB.open(root / STATE_FILE)
        try:
            backend = open_backend(settings.store, root / GRAPH_DIR)
        except BaseException:
            state.close()
            raise
        store = cls(root, settings, backend, state)
        store.recovered = store.recover()
        return store

    def close(self) -> None:
        self.backend.close()
        self.state.close()

    def __enter__(self) -> "KnowledgeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> list[str]:
        """Finish or undo source writes a crash interrupted; returns what was done."""
        done = []
        for entry in self.state.pending_writes():
            committed = self.backend.query(
                f"ASK {{ GRAPH <{self.vocab.provenance_graph}> {{ <{entry.new_graph}> "
                f"<{self.vocab.content_hash}> ?h }} }}", "ASK", timeout=60,
            ).boolean
            if committed:
                self.state.commit_write(entry.id, entry.record, "recovered",
                                        "write finished after a crash")
                done.append(f"rolled forward {entry.record.uri}")
            else:
                if entry.new_graph != entry.old_graph:
                    self.backend.drop_graph(entry.new_graph)
                self.state.abort_write(entry.id)
                self.state.log("rolled-back", entry.source_id, entry.record.uri,
                               "interrupted write undone")
                done.append(f"rolled back {entry.record.uri}")
        if self.state.get_meta("reasoning") == "in-progress":
            self.reason()
            done.append("recomputed inferences")
        return done

    # -- sources -------------------------------------------------------------------
    def import_file(self, path: Path, fmt: str | None = None, *, force: bool = False) -> ImportReport:
        """Import one file as one source. Raises :class:`SourceError`; stores nothing then."""
        started = time.perf_counter()
        src = open_source(Path(path), fmt, self.vocab, self.settings.import_)
        old = self.state.get_source(source_id_for(src.uri))
        if old is not None and old.version == src.version and not force:
            # Checked before parsing: an unchanged file costs one read and one hash.
            return ImportReport(str(src.path), "unchanged", old.id, old.graph, old.triple_count,
                                time.perf_counter() - started)
        parsed = parse_source(src, self.vocab, self.settings.import_)
        report = self.write_source(parsed, kind="file", force=force)
        report.seconds = time.perf_counter() - started
        return report

    def import_files(self, paths: Sequence[Path], fmt: str | None = None, *,
                     force: bool = False) -> list[ImportReport]:
        """Import each file; a bad file is reported and the others go on. One run in state.db."""
        run_id = self.state.start_run("import")
        reports: list[ImportReport] = []
        status = "interrupted"
        try:
            for path in paths:
                try:
                    reports.append(self.import_file(path, fmt, force=force))
                except SourceError as exc:
                    reports.append(ImportReport(str(path), "failed", error=str(exc)))
            status = "failed" if any(r.action == "failed" for r in reports) else "ok"
        finally:
            counts: dict[str, Any] = {}
            for r in reports:
                counts[r.action] = counts.get(r.action, 0) + 1
            counts["triples"] = sum(r.triples for r in reports if r.action in ("added", "replaced"))
            self.state.finish_run(run_id, status, counts)
        return reports

    def write_source(self, parsed: ParsedSource, *, kind: str, force: bool = False) -> ImportReport:
        source_id = source_id_for(parsed.uri)
        old = self.state.get_source(source_id)
        version = parsed.version
        if old is not None and old.version == version and not force:
            return ImportReport(str(parsed.path), "unchanged", source_id, old.graph, old.triple_count)
        if old is not None and old.version == version:
            version = f"{version}-{int(time.time() * 1000) % 10**8}"  # forced rewrite: new name
        triples = list(dict.fromkeys(parsed.triples))
        record = self._record(parsed, kind, version, len(triples), old)
        old_graph = old.graph if old else None
        old_triples: set[Triple] | None = None
        if old is not None and (self._reasoning_active()
                                or old.triple_count <= self.settings.store.bulk_threshold):
            old_triples = {(s, p, o) for s, p, o, _ in self.backend.read_triples(old.graph)}
        journal_id = self.state.begin_write(record, old_graph)
        try:
            if old_graph is None and len(triples) <= self.settings.store.bulk_threshold:
                # Nothing to drop: one atomic insert of data and provenance (a parse of
                # N-Quads is cheaper than one of a SPARQL update).
                prov_g = str(self.vocab.provenance_graph)
                self.backend.insert_atomic([*((s, p, o, record.graph) for s, p, o in triples),
                                            *((s, p, o, prov_g) for s, p, o in self._provenance(record))])
            elif len(triples) <= self.settings.store.bulk_threshold:
                swap = self._provenance_swap(record, old_graph)
                data = insert_data(record.graph, triples)
                self.backend.update(f"{swap} ;\n{data}" if data else swap)
            else:
                self.backend.bulk_insert(record.graph, triples)
                self.backend.update(self._provenance_swap(record, old_graph))
        except BaseException:
            # Undo what this process can; if even that fails (endpoint gone), the journal
            # entry stays and recover() finishes the rollback on the next open.
            try:
                self.backend.drop_graph(record.graph)
                self.state.abort_write(journal_id)
            except KgchatError as cleanup:
                log.warning("rollback of %s left for the next open: %s", record.uri, cleanup)
            raise
        action = "replaced" if old else "added"
        self.state.commit_write(journal_id, record, action, f"{len(triples)} triples")
        if old is not None and old.triple_count > self.settings.store.bulk_threshold:
            self.backend.compact()
        report = ImportReport(str(parsed.path), action, source_id, record.graph, len(triples))
        if old_triples is None:
            report.added, report.retracted = len(triples), (old.triple_count if old else 0)
        else:
            new_set = set(triples)
            report.added, report.retracted = len(new_set - old_triples), len(old_triples - new_set)
        if self._reasoning_active():
            # Diff what the backend holds: an endpoint may canonicalise literals ("1.50" → "1.5").
            new_set = {(s, p, o) for s, p, o, _ in self.backend.read_triples(record.graph)}
            old_set = old_triples or set()
            report.inferred = self._reason_delta(new_set - old_set, old_set - new_set)
        return report

    def write_new_sources(self, items: Sequence[tuple[ParsedSource, str]]) -> list[ImportReport]:
        """Several sources, none of them stored yet, in one transaction: each is in the
        store completely or not at all, and one commit serves them all."""
        records, quads, all_triples = [], [], []
        prov_g = str(self.vocab.provenance_graph)
        for parsed, kind in items:
            if self.state.get_source(source_id_for(parsed.uri)) is not None:
                raise StoreError(f"{parsed.uri} is stored already; write it with write_source()")
            triples = list(dict.fromkeys(parsed.triples))
            record = self._record(parsed, kind, parsed.version, len(triples), None)
            records.append(record)
            all_triples.append(triples)
            quads += [(s, p, o, record.graph) for s, p, o in triples]
            quads += [(s, p, o, prov_g) for s, p, o in self._provenance(record)]
        journal = [self.state.begin_write(r, None) for r in records]
        try:
            self.backend.insert_atomic(quads)
        except BaseException:
            for r, jid in zip(records, journal):
                self.state.abort_write(jid)
            raise
        reports = []
        for r, jid, (parsed, _), triples in zip(records, journal, items, all_triples):
            self.state.commit_write(jid, r, "added", f"{len(triples)} triples")
            reports.append(ImportReport(str(parsed.path), "added", r.id, r.graph, len(triples),
                                        added=len(triples)))
        if self._reasoning_active() and reports:
            reports[-1].inferred = self._reason_delta({t for ts in all_triples for t in ts}, set())
        return reports

    def _record(self, parsed: ParsedSource, kind: str, version: str, count: int,
                old: SourceRecord | None) -> SourceRecord:
        source_id = source_id_for(parsed.uri)
        now = now_iso()
        return SourceRecord(
            id=source_id, uri=parsed.uri, kind=kind, format=parsed.format,
            graph=self.vocab.source_graph(source_id, version), content_hash=parsed.content_hash,
            version=version, triple_count=count,
            imported_at=old.imported_at if old else now, updated_at=now, options=parsed.options,
        )

    def _provenance_swap(self, record: SourceRecord, old_graph: str | None) -> str:
        """One update: drop the old version and its provenance, describe the new one."""
        parts = self._drop_version(old_graph) if old_graph else []
        parts.append(insert_data(str(self.vocab.provenance_graph), self._provenance(record)))
        return " ;\n".join(parts)

    def _provenance(self, record: SourceRecord) -> list[Triple]:
        """PROV-O description of one source version (in the provenance graph)."""
        g, src = f"<{record.graph}>", f"<{record.uri}>"
        activity = f"<{self.vocab.RUN}{record.id}/{record.version}>"
        dt = str(XSD.dateTime)
        prov: list[Triple] = [
            (g, f"<{RDF.type}>", f"<{PROV.Entity}>"),
            (g, f"<{PROV.wasDerivedFrom}>", src),
            (g, f"<{PROV.generatedAtTime}>", nt_literal(record.updated_at, dt)),
            (g, f"<{PROV.wasGeneratedBy}>", activity),
            (g, f"<{self.vocab.content_hash}>", nt_literal(record.content_hash)),
            (g, f"<{self.vocab.source_format}>", nt_literal(record.format)),
            (g, f"<{self.vocab.triple_count}>", nt_literal(str(record.triple_count), str(XSD.integer))),
            (g, f"<{self.vocab.KGV['source']}>", f"<{self.vocab.source(record.id)}>"),
            (activity, f"<{RDF.type}>", f"<{PROV.Activity}>"),
            (activity, f"<{PROV.used}>", src),
            (activity, f"<{PROV.endedAtTime}>", nt_literal(record.updated_at, dt)),
            (src, f"<{RDF.type}>", f"<{PROV.Entity}>"),
            (src, f"<{RDFS.label}>", nt_literal(record.uri.rsplit("/", 1)[-1])),
        ]
        return prov

    def _drop_version(self, graph: str) -> list[str]:
        """Update operations removing one source version and its provenance."""
        prov_g = self.vocab.provenance_graph
        return [
            f"DROP SILENT GRAPH <{graph}>",
            f"DELETE WHERE {{ GRAPH <{prov_g}> {{ <{graph}> <{PROV.wasGeneratedBy}> ?a . ?a ?ap ?ao }} }}",
            f"DELETE WHERE {{ GRAPH <{prov_g}> {{ <{graph}> ?p ?o }} }}",
        ]

    def remove_source(self, key: str) -> ImportReport:
        record = self.state.find_source(key)
        if record is None:
            raise KgchatError(f"no source {key!r}; `kgchat sources list` shows the ids")
        removed: list[Triple] = []
        if self._reasoning_active():
            removed = [(s, p, o) for s, p, o, _ in self.backend.read_triples(record.graph)]
        prov_g = self.vocab.provenance_graph
        self.backend.update(" ;\n".join([
            *self._drop_version(record.graph),
            f"DELETE WHERE {{ GRAPH <{prov_g}> {{ <{record.uri}> ?p ?o }} }}",
        ]))
        self.state.delete_source(record, f"{record.triple_count} triples")
        if record.triple_count > self.settings.store.bulk_threshold:
            self.backend.compact()
        report = ImportReport(record.uri, "removed", record.id, record.graph, record.triple_count,
                              retracted=record.triple_count)
        if removed:
            report.inferred = self._reason_delta(set(), set(removed))
        return report

    def sources(self) -> list[SourceRecord]:
        return self.state.sources()

    def source(self, key: str) -> SourceRecord | None:
        return self.state.find_source(key)

    # -- queries -------------------------------------------------------------------
    def query(self, text: str, *, allow_update: bool = False, allow_service: bool | None = None,
              timeout: float | None = None, max_rows: int | None = None) -> QueryResult | None:
        """Run a query over all graphs plus inferences; updates only with ``allow_update``.

        Returns None for an update (after which inferences are recomputed if active)."""
        allow_service = self.settings.query.allow_service if allow_service is None else allow_service
        form = check_allowed(text, allow_update=allow_update, allow_service=allow_service)
        if form == "UPDATE":
            self.backend.update(_with_prefixes(text, self.vocab.prefixes()))
            self.state.log("update", None, None, text.strip()[:200])
            if self._reasoning_active():
                self.reason()
            return None
        return self.backend.query(
            text, form, timeout=timeout or self.settings.query.timeout,
            max_rows=self.settings.query.max_rows if max_rows is None else max_rows,
            prefixes=self.vocab.prefixes(),
        )

    def export(self, out: IO[bytes], fmt: str = "nquads", graph: str | None = None) -> None:
        self.backend.export(out, fmt, graph)

    # -- reasoning -----------------------------------------------------------------
    def _reasoning_active(self) -> bool:
        return self.settings.reason.auto and self.state.get_meta("reasoned_at") is not None

    def reason(self) -> ReasonSummary:
        """Recompute every inference from the asserted triples."""
        self.state.set_meta("reasoning", "in-progress")
        run_id = self.state.start_run("reason")
        summary = materialise(self.backend, self.vocab, self.settings.reason)
        self.state.set_meta("reasoned_at", now_iso())
        self.state.set_meta("reasoning", "done")
        self.state.finish_run(run_id, "ok", {"mode": summary.mode, "added": summary.added,
                                             "removed": summary.removed, "total": summary.total,
                                             "seconds": round(summary.seconds, 3)})
        self.state.log("reasoned", None, None,
                       f"{summary.mode}: +{summary.added} -{summary.removed} = {summary.total} inferred")
        return summary

    def update_inferences(self) -> ReasonSummary:
        """Bring inferences up to date without recomputing what still holds."""
        if self.state.get_meta("reasoned_at") is None or self.state.get_meta("reasoning") != "done":
            return self.reason()
        return self._reason_delta(set(), set())

    def _reason_delta(self, added: set[Triple], removed: set[Triple]) -> ReasonSummary:
        self.state.set_meta("reasoning", "in-progress")
        summary = update_incrementally(self.backend, self.vocab, self.settings.reason, added, removed)
        self.state.set_meta("reasoned_at", now_iso())
        self.state.set_meta("reasoning", "done")
        return summary

    # -- status --------------------------------------------------------------------
    def status(self) -> StoreStatus:
        v = self.vocab
        system = (str(v.provenance_graph), str(v.inferred_graph))
        graphs = self.backend.graph_names()
        inferred = self.backend.count(str(v.inferred_graph)) if system[1] in graphs else 0
        prov = self.backend.count(str(v.provenance_graph)) if system[0] in graphs else 0
        total = self.backend.count()
        source_graphs = " ".join(f"<{r.graph}>" for r in self.state.sources())
        res = self.backend.query(
            # Only the sources' graphs: a remote endpoint may hold graphs of its own.
            f"SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE {{ VALUES ?g {{ {source_graphs} }} GRAPH ?g {{ "
            f"{{ ?e ?p ?o FILTER(?p != <{RDFS.label}>) }} UNION "
            f"{{ ?s ?p ?e FILTER(!isLiteral(?e) && ?p != <{RDF.type}>) }} }} }}",
            "SELECT", timeout=600,
        )
        entities = int(res.rows[0][0]) if res.rows and res.rows[0][0] is not None else 0
        return StoreStatus(
            backend=self.backend.name,
            location=str(self.root),
            triples=total, asserted=total - inferred - prov, inferred=inferred, provenance=prov,
            entities=entities, sources=len(self.state.sources()),
            named_graphs=len(graphs), reasoned_at=self.state.get_meta("reasoned_at"),
            last_changes=self.state.recent_changes(8),
            last_runs=self.state.recent_runs(5),
        )


def _with_prefixes(text: str, prefixes: dict[str, str]) -> str:
    """Declare kgchat's standard prefixes unless the request declares them itself."""
    lower = text.lower()
    decl = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in prefixes.items()
                   if f"prefix {p}:" not in lower)
    return decl + text


__all__ = ["KnowledgeStore", "ImportReport", "ReasonSummary", "StoreStatus", "DEFAULT_GRAPH"]
