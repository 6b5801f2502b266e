"""The embedded default: Oxigraph on disk, seen through oxrdflib's rdflib Store plugin.

Writes use pyoxigraph directly (``update`` is one transaction; ``bulk_load`` is the fast
path for big sources) and reads skip rdflib term objects where they are hot.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import pyoxigraph as ox
from oxrdflib import OxigraphStore
from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.term import Identifier

from kg.backends.base import DEFAULT_GRAPH, Triple
from kg.errors import QueryError, QueryTimeoutError, StoreError
from kg.sparql import QueryForm, QueryResult, evaluates_before_first_row

EXPORT_FORMATS: dict[str, ox.RdfFormat] = {
    "nquads": ox.RdfFormat.N_QUADS, "trig": ox.RdfFormat.TRIG,
    "ntriples": ox.RdfFormat.N_TRIPLES, "turtle": ox.RdfFormat.TURTLE,
    "rdfxml": ox.RdfFormat.RDF_XML, "jsonld": ox.RdfFormat.JSON_LD,
}


@lru_cache(maxsize=100_000)
def to_ox(term: str) -> Any:
    """An N-Triples term string as a pyoxigraph term."""
    if term.startswith("<"):
        return ox.NamedNode(term[1:-1])
    if term.startswith("_:"):
        return ox.BlankNode(term[2:])
    quad = next(iter(ox.parse(f"<urn:s> <urn:p> {term} .", format=ox.RdfFormat.N_TRIPLES)))
    return quad.object


class TermConverter:
    """pyoxigraph → rdflib terms, memoised: multi-hop results repeat the same nodes."""

    def __init__(self) -> None:
        self._cache: dict[Any, Identifier] = {}

    def __call__(self, term: Any) -> Identifier | None:
        if term is None:
            return None
        hit = self._cache.get(term)
        if hit is not None:
            return hit
        if isinstance(term, ox.NamedNode):
            out: Identifier = URIRef(term.value)
        elif isinstance(term, ox.BlankNode):
            out = BNode(term.value)
        elif isinstance(term, ox.Literal):
            if term.language:
                out = Literal(term.value, lang=term.language)
            elif term.datatype.value == "http://www.w3.org/2001/XMLSchema#string":
                out = Literal(term.value)
            else:
                out = Literal(term.value, datatype=URIRef(term.datatype.value))
        else:
            raise QueryError(f"unsupported term in results: {term!r}")
        if len(self._cache) >= 200_000:
            self._cache.clear()  # bounded; a cold cache costs only conversions
        self._cache[term] = out
        return out


def _timeout(seconds: float | None) -> QueryTimeoutError:
    limit = f" {seconds:g} s" if seconds is not None else " its timeout"
    return QueryTimeoutError(f"the query ran longer than{limit}; narrow it (LIMIT, more "
                             f"specific patterns) or raise --timeout")


def _reraise(exc: BaseException) -> QueryResult:
    raise exc


class OxigraphBackend:
    name = "oxigraph"

    def __init__(self, inner: ox.Store, path: Path | None) -> None:
        self._inner = inner
        self._path = path
        self._dataset: Dataset | None = None
        self._convert = TermConverter()  # shared: queries keep meeting the same nodes

    @classmethod
    def open(cls, path: Path) -> "OxigraphBackend":
        path.mkdir(parents=True, exist_ok=True)
        try:
            return cls(ox.Store(str(path)), path)
        except OSError as exc:
            raise StoreError(f"cannot open the Oxigraph store at {path}: {exc}. Is another "
                             f"kgchat process using it?") from exc

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = Dataset(store=OxigraphStore(store=self._inner), default_union=True)
        return self._dataset

    @property
    def inner(self) -> ox.Store:
        """The pyoxigraph store, for benchmarks and advanced users."""
        return self._inner

    # -- reads --------------------------------------------------------------------
    def graph_names(self) -> list[str]:
        return sorted(g.value for g in self._inner.named_graphs() if isinstance(g, ox.NamedNode))

    def count(self, graph: str | None = None) -> int:
        if graph is None:
            return len(self._inner)
        g = ox.DefaultGraph() if graph == DEFAULT_GRAPH else ox.NamedNode(graph)
        q = "SELECT (COUNT(*) AS ?c) WHERE { ?s ?p ?o }"
        return int(next(iter(self._inner.query(q, default_graph=g)))[0].value)

    def read_triples(
        self, graph: str | None = None, predicate: str | None = None, obj: str | None = None
    ) -> Iterator[tuple[str, str, str, str]]:
        g: Any = None
        if graph is not None:
            g = ox.DefaultGraph() if graph == DEFAULT_GRAPH else ox.NamedNode(graph)
        p = ox.NamedNode(predicate) if predicate else None
        o = to_ox(obj) if obj else None
        for q in self._inner.quads_for_pattern(None, p, o, g):
            gn = q.graph_name
            yield (str(q.subject), str(q.predicate), str(q.object),
                   gn.value if isinstance(gn, ox.NamedNode) else DEFAULT_GRAPH)

    def read_touching(self, nodes: Iterable[str]) -> Iterator[tuple[str, str, str, str]]:
        seen: set[Any] = set()
        for node in nodes:
            term = to_ox(node)
            for q in (*self._inner.quads_for_pattern(term, None, None, None),
                      *self._inner.quads_for_pattern(None, None, term, None)):
                if q in seen:
                    continue
                seen.add(q)
                gn = q.graph_name
                yield (str(q.subject), str(q.predicate), str(q.object),
                       gn.value if isinstance(gn, ox.NamedNode) else DEFAULT_GRAPH)

    def contains(self, triples: Iterable[Triple], graph: str | None = None) -> set[Triple]:
        g: Any = None
        if graph is not None:
            g = ox.DefaultGraph() if graph == DEFAULT_GRAPH else ox.NamedNode(graph)
        found = set()
        for t in triples:
            s, p, o = t
            if next(iter(self._inner.quads_for_pattern(to_ox(s), to_ox(p), to_ox(o), g)), None):
                found.add(t)
        return found

    # -- writes -------------------------------------------------------------------
    def update(self, sparql: str) -> None:
        try:
            self._inner.update(sparql)
        except SyntaxError as exc:
            raise QueryError(f"invalid SPARQL update: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"the store refused the update: {exc}") from exc

    def insert_atomic(self, quads: Sequence[tuple[str, str, str, str]]) -> None:
        if not quads:
            return
        text = "".join(f"{s} {p} {o} <{g}> .\n" for s, p, o, g in quads)
        try:
            self._inner.load(text, format=ox.RdfFormat.N_QUADS)  # one transaction
        except SyntaxError as exc:
            raise StoreError(f"invalid data for the store: {exc}") from exc

    def bulk_insert(self, graph: str, triples: Sequence[Triple]) -> None:
        if not triples:
            return
        text = "".join(f"{s} {p} {o} .\n" for s, p, o in triples)
        self._inner.bulk_load(text, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))

    def drop_graph(self, graph: str) -> None:
        g = ox.NamedNode(graph)
        if self._inner.contains_named_graph(g):
            self._inner.remove_graph(g)

    # -- queries ------------------------------------------------------------------
    def query(self, sparql: str, form: QueryForm, *, timeout: float, max_rows: int = 0,
              prefixes: dict[str, str] | None = None) -> QueryResult:
        deadline = time.monotonic() + timeout
        if form in ("SELECT", "CONSTRUCT", "DESCRIBE") and not evaluates_before_first_row(sparql):
            # Streaming queries do their work row by row, so they run here and stop at the
            # deadline; a thread hop would cost more than a 2-hop query itself.
            return self._guarded(lambda: self._run_query(sparql, form, max_rows, prefixes or {},
                                                         deadline))
        return self._in_worker(sparql, form, max_rows, prefixes or {}, deadline, timeout)

    def _in_worker(self, sparql: str, form: QueryForm, max_rows: int, prefixes: dict[str, str],
                   deadline: float, timeout: float) -> QueryResult:
        """Aggregates, ORDER BY and ASK evaluate inside one Rust call that cannot be
        interrupted; Oxigraph releases the GIL there, so a daemon thread runs it and the
        caller stops waiting at the deadline."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = self._run_query(sparql, form, max_rows, prefixes, deadline)
            except BaseException as exc:  # handed to the caller's thread below
                # without its traceback: the frames hold pyoxigraph iterators, which must
                # be dropped on this thread
                box["error"] = exc.with_traceback(None)

        worker = threading.Thread(target=run, name="kgchat-query", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise _timeout(timeout)
        return self._guarded(lambda: box["result"] if "error" not in box else _reraise(box["error"]))

    @staticmethod
    def _guarded(run: Any) -> QueryResult:
        try:
            return run()
        except SyntaxError as exc:
            raise QueryError(f"invalid SPARQL query: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def _run_query(self, sparql: str, form: QueryForm, max_rows: int,
                   prefixes: dict[str, str], deadline: float) -> QueryResult:
        raw = self._inner.query(sparql, use_default_graph_as_union=True, prefixes=prefixes)
        return self._collect(raw, form, max_rows, deadline)

    def _collect(self, raw: Any, form: QueryForm, max_rows: int, deadline: float) -> QueryResult:
        if isinstance(raw, ox.QueryBoolean):
            return QueryResult("ASK", boolean=bool(raw))
        conv, clock = self._convert, time.monotonic
        if isinstance(raw, ox.QueryTriples):
            graph = Graph()
            for i, t in enumerate(raw):
                if max_rows and i >= max_rows:
                    return QueryResult(form, graph=graph, truncated=True)
                if clock() > deadline:
                    raise _timeout(None)
                graph.add((conv(t.subject), conv(t.predicate), conv(t.object)))  # type: ignore[arg-type]
            return QueryResult(form, graph=graph)
        names = [v.value for v in raw.variables]
        rows: list[tuple[Identifier | None, ...]] = []
        truncated = False
        for sol in raw:
            if max_rows and len(rows) >= max_rows:
                truncated = True
                break
            if clock() > deadline:
                raise _timeout(None)
            rows.append(tuple(conv(v) for v in sol))
        return QueryResult("SELECT", vars=names, rows=rows, truncated=truncated)

    # -- export -------------------------------------------------------------------
    def export(self, out: IO[bytes], fmt: str, graph: str | None = None) -> None:
        rdf_format = EXPORT_FORMATS[fmt]
        if graph is None:
            if not rdf_format.supports_datasets:
                raise QueryError(f"{fmt} holds one graph; export the dataset as nquads or "
                                 f"trig, or pass --graph")
            self._inner.dump(out, rdf_format)
        else:
            self._inner.dump(out, rdf_format, from_graph=ox.NamedNode(graph))

    def compact(self) -> None:
        # Dropped quads linger as RocksDB tombstones and slow scans until compacted.
        self._inner.optimize()

    def close(self) -> None:
        self._inner.flush()
        self._dataset = None
        del self._inner
