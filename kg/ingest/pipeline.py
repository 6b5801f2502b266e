"""Documents in, provenance-tracked triples out — incrementally.

One streaming pass: discover → skip what is unchanged (hash of the raw bytes, before any
parsing) → load → extract (``nlp.pipe`` over all cores, fed lazily) → resolve entities →
write each document as one source graph (one transaction) → register its entities.

Entity resolution keeps an index beside the graph (``<store>/index/entities``); it is a
cache of the label/altLabel/type triples in the document graphs, stamped with the store's
change counter and rebuilt from the graph whenever the stamp is stale (after a crash,
say), so an interrupted run repeated gives the same store as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlparse

from kg.errors import SourceError, StoreError
from kg.extract.base import ExtractedTriple, Extractor, Literal, Mention
from kg.importers import ParsedSource
from kg.ingest.rdf import EntityRef, document_triples
from kg.sources import Document
from kg.sources.document import content_hash
from kg.store import KnowledgeStore
from kg.vocab import source_id_for

# Bump when extraction or the RDF layout changes, so unchanged files are re-extracted.
PIPELINE_VERSION = "3"  # 3: paragraphs stored as kgv:Chunk for text retrieval
DOCUMENT_KINDS = ("document", "conversation")
WRITE_BATCH = 32  # new documents per transaction: a commit costs more than a small document


@dataclass
class IngestSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    facts: int = 0
    triples_added: int = 0
    triples_retracted: int = 0
    entities_new: int = 0
    entities_merged: int = 0
    words: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return self.new + self.changed + self.unchanged + self.failed


Progress = Callable[[str, "IngestSummary"], None]


class Ingestor:
    """Owns the extractor and resolver for one store; models load once."""

    def __init__(self, store: KnowledgeStore, extractor: Extractor, resolver: "object",
                 loader: "Callable[[str], Document]", discover: "Callable[[Sequence[str]], list[str]]") -> None:
        self.store = store
        self.extractor = extractor
        self.resolver = resolver
        self._load = loader
        self._discover = discover
        self.options = {"pipeline": PIPELINE_VERSION, "extractor": extractor.name,
                        **_extract_options(store)}

    def discover(self, targets: Sequence[str]) -> list[str]:
        """The files and URLs ``ingest(targets)`` would look at."""
        return self._discover(list(targets))

    # -- versions ---------------------------------------------------------------------
    def version(self, digest: str) -> str:
        key = json.dumps([digest, self.options], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def _unchanged(self, uri: str, digest: str) -> bool:
        old = self.store.state.get_source(source_id_for(uri))
        return old is not None and old.version == self.version(digest)

    # -- the run ----------------------------------------------------------------------
    def ingest(self, targets: Sequence[str], *, prune: bool = False, force: bool = False,
               progress: Progress | None = None) -> IngestSummary:
        """Files, folders (recursively) and URLs; ``prune`` retracts documents that were
        ingested from these folders and are gone now."""
        with self._run("ingest") as summary:
            items = self.discover(targets)
            self._process(self._documents(items, summary, force, progress), summary, progress)
            if prune:
                self._prune(targets, items, summary)
        return summary

    def ingest_documents(self, docs: Iterable[Document], *, force: bool = False,
                         progress: Progress | None = None) -> IngestSummary:
        """Documents already in memory (chat turns, benchmarks, other loaders)."""
        with self._run("ingest") as summary:
            fresh = (d for d in docs if force or not self._skip_unchanged(d, summary))
            self._process(self._counted(fresh, summary), summary, progress)
        return summary

    def store_extracted(self, doc: Document, facts: list[ExtractedTriple], *,
                        kind: str = "chat", short_names: str = "registry") -> IngestSummary:
        """Write one document whose facts were extracted already (a chat turn). A bare
        surname in chat means someone already known, hence ``short_names="registry"``."""
        with self._run(kind) as summary:
            summary.words += len(doc.text.split())
            self._write(doc, facts, summary, short_names)
        return summary

    def close(self) -> None:
        self.resolver.close()

    def __enter__(self) -> "Ingestor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _run(self, kind: str) -> Iterator[IngestSummary]:
        started = time.perf_counter()
        summary = IngestSummary()
        run_id = self.store.state.start_run(kind)
        status = "interrupted"
        try:
            yield summary
            self.save_index()
            status = "failed" if summary.failed else "ok"
        finally:
            summary.seconds = time.perf_counter() - started
            self.store.state.finish_run(run_id, status, {
                k: v for k, v in summary.__dict__.items() if k != "errors"})

    def _process(self, docs: Iterable[Document], summary: IngestSummary,
                 progress: Progress | None) -> None:
        batch: list[tuple[ParsedSource, str]] = []
        for doc, facts in self.extractor.extract(docs):
            self._write(doc, facts, summary, batch=batch)
            if progress:
                progress(doc.uri, summary)
        self._flush(batch, summary)

    def _flush(self, batch: list[tuple[ParsedSource, str]], summary: IngestSummary) -> None:
        """Write the new documents collected so far in one transaction."""
        if not batch:
            return
        try:
            reports = self.store.write_new_sources(batch)
        except StoreError:
            # One bad document must not sink its batch: write them one by one, so the
            # error names the document and the others are stored.
            reports = []
            for parsed, kind in batch:
                try:
                    reports.append(self.store.write_source(parsed, kind=kind, force=True))
                except StoreError as exc:
                    summary.failed += 1
                    summary.errors.append((parsed.uri, f"{parsed.uri}: {exc}"))
                    self.resolver.release(source_id_for(parsed.uri))
        for report in reports:
            summary.new += 1
            summary.triples_added += report.added
        batch.clear()

    def _skip_unchanged(self, doc: Document, summary: IngestSummary) -> bool:
        if self._unchanged(doc.uri, doc.content_hash):
            summary.unchanged += 1
            return True
        return False

    @staticmethod
    def _counted(docs: Iterable[Document], summary: IngestSummary) -> Iterator[Document]:
        for doc in docs:
            summary.words += len(doc.text.split())
            yield doc

    def _documents(self, items: list[str], summary: IngestSummary, force: bool,
                   progress: Progress | None) -> Iterator[Document]:
        """Load what changed; unchanged and unreadable items are counted, not yielded."""
        limit = self.store.settings.extract.max_chars
        for item in items:
            try:
                if not force and _is_local(item):
                    path = Path(item)
                    data = path.read_bytes() if path.is_file() else None
                    if data is not None and self._unchanged(path.resolve().as_uri(), content_hash(data)):
                        summary.unchanged += 1
                        if progress:
                            progress(item, summary)
                        continue
                doc = self._load(item)
                if not force and self._skip_unchanged(doc, summary):
                    continue  # e.g. a URL whose bytes did not change
                if len(doc.text) > limit:
                    raise SourceError(doc.uri, f"{len(doc.text):,} characters of text is more than "
                                               f"extract.max_chars ({limit:,}); split the document "
                                               f"or raise the setting")
            except SourceError as exc:
                summary.failed += 1
                summary.errors.append((item, str(exc)))
                if progress:
                    progress(item, summary)
                continue
            summary.words += len(doc.text.split())
            yield doc

    def _write(self, doc: Document, facts: list[ExtractedTriple], summary: IngestSummary,
               short_names: str | None = None,
               batch: list[tuple[ParsedSource, str]] | None = None) -> None:
        if doc.metadata.get("extraction_error"):
            summary.failed += 1
            summary.errors.append((doc.uri, str(doc.metadata["extraction_error"])))
            return
        min_conf = self.store.settings.extract.min_confidence
        facts = [f for f in facts if f.confidence >= min_conf]
        source_id = source_id_for(doc.uri)
        refs, resolved = self._resolve(facts, summary, short_names)
        triples = document_triples(self.store.vocab, doc, facts, refs)
        parsed = ParsedSource(doc.uri, doc.uri, doc.kind, doc.content_hash, triples,
                              self.options, self.version(doc.content_hash))
        summary.facts += sum(1 for f in facts if _resolved(f, refs))
        # The registry learns this document now, so the next one resolves against it;
        # the graph gets it with its batch. Should that write not happen, the index is
        # stale, and a stale index is rebuilt from the graph on the next open (its stamp
        # is saved only after a successful run).
        self.resolver.register(source_id, resolved)
        if (batch is not None and self.store.state.get_source(source_id) is None
                and all(p.uri != parsed.uri for p, _ in batch)):
            batch.append((parsed, doc.kind))
            if len(batch) >= WRITE_BATCH:
                self._flush(batch, summary)
            return
        if batch:
            self._flush(batch, summary)
        try:
            report = self.store.write_source(parsed, kind=doc.kind, force=True)
        except StoreError as exc:
            summary.failed += 1
            summary.errors.append((doc.uri, f"{doc.uri}: {exc}"))
            self.resolver.release(source_id)
            return
        summary.triples_added += report.added
        summary.triples_retracted += report.retracted
        if report.action == "replaced":
            summary.changed += 1
        else:
            summary.new += 1

    def _resolve(self, facts: list[ExtractedTriple], summary: IngestSummary,
                 short_names: str | None) -> tuple[dict[str, EntityRef], list]:
        names: dict[str, str] = {}
        for f in facts:
            for m in (f.subject, f.object):
                if not isinstance(m, Literal):
                    names.setdefault(m.name, m.type)
                    if _is_short_name(m):  # "Earhart" standing for "Amelia Earhart"
                        names.setdefault(m.text, m.type)
        resolved = (self.resolver.resolve(list(names.items()), short_names=short_names)
                    if names else [])
        refs: dict[str, EntityRef] = {}
        for (name, _), ent in zip(names.items(), resolved):
            refs[name] = EntityRef(ent.iri, ent.label, ent.alias, ent.type)
            summary.entities_new += int(ent.new)
            summary.entities_merged += int(ent.merged)
        return refs, resolved

    def _prune(self, targets: Sequence[str], items: list[str], summary: IngestSummary) -> None:
        """Retract documents that were ingested from these folders and are gone now."""
        present = {Path(i).resolve().as_uri() for i in items if _is_local(i)}
        folders = [Path(t).resolve().as_uri().rstrip("/") + "/" for t in targets
                   if _is_local(t) and Path(t).is_dir()]
        for record in self.store.sources():
            if (record.kind in DOCUMENT_KINDS and record.uri not in present
                    and any(record.uri.startswith(f) for f in folders)
                    and not file_uri_to_path(record.uri).exists()):
                report = self.store.remove_source(record.id)
                self.resolver.release(record.id)
                summary.removed += 1
                summary.triples_retracted += report.retracted

    # -- the entity index ---------------------------------------------------------------
    def save_index(self) -> None:
        self.resolver.stamp = documents_stamp(self.store)
        self.resolver.to_disk(index_dir(self.store))

    def remove(self, key: str) -> None:
        """Retract one document and release its entities."""
        report = self.store.remove_source(key)
        self.resolver.release(report.source_id)
        self.save_index()


def file_uri_to_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _is_local(item: str) -> bool:
    return not item.startswith(("http://", "https://"))


_NOT_NAMES = frozenset("he him his himself she her hers herself it its itself they them their "
                       "theirs themselves this that these those".split())


def _is_short_name(m: Mention) -> bool:
    """A coreferent mention that is itself a name, worth keeping as an alias."""
    text = m.text.strip()
    return (bool(m.canonical) and text != m.canonical and text[:1].isupper()
            and text.lower() not in _NOT_NAMES and not text.lower().startswith(("the ", "a ", "an ")))


def _resolved(f: ExtractedTriple, refs: dict[str, EntityRef]) -> bool:
    return f.subject.name in refs and (isinstance(f.object, Literal) or f.object.name in refs)


def _extract_options(store: KnowledgeStore) -> dict[str, object]:
    ex = store.settings.extract
    return {"model": ex.spacy_model if ex.extractor == "spacy" else ex.llm_model,
            "relation_map": dict(sorted(ex.relation_map.items())),
            "base": store.vocab.base}


def index_dir(store: KnowledgeStore) -> Path:
    return store.root / "index" / "entities"


def documents_stamp(store: KnowledgeStore) -> str:
    """Identifies the set of document versions in the store: the entity index is valid
    exactly when it was saved with the current stamp."""
    versions = store.state.versions(DOCUMENT_KINDS)
    return hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:16]


def document_rows(store: KnowledgeStore) -> Iterable[tuple[str, str, str, str]]:
    """(source id, entity IRI, predicate IRI, value) of every document graph's entity
    labels, alternative labels and types: what the entity index is rebuilt from."""
    from kg.vocab import RDF, RDFS, SKOS

    by_graph = {r.graph: r.id for r in store.sources() if r.kind in DOCUMENT_KINDS}
    if not by_graph:
        return
    values = " ".join(f"<{g}>" for g in by_graph)
    res = store.backend.query(
        f"SELECT ?g ?e ?p ?v WHERE {{ VALUES ?g {{ {values} }} VALUES ?p {{ <{RDFS.label}> "
        f"<{SKOS.altLabel}> <{RDF.type}> }} GRAPH ?g {{ ?e ?p ?v }} "
        f"FILTER(STRSTARTS(STR(?e), \"{store.vocab.ENT}\")) }}",
        "SELECT", timeout=3600,
    )
    for g, e, p, v in res.rows:
        yield by_graph[str(g)], str(e), str(p), str(v)
