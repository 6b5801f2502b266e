"""The contract every graph backend keeps (the contract tests run it on each)."""

from __future__ import annotations

from typing import IO, Iterable, Iterator, Protocol, Sequence

from rdflib import Dataset

from kg.sparql import QueryForm, QueryResult

# A triple as N-Triples term strings: ("<s>", "<p>", "\"o\"@en").
Triple = tuple[str, str, str]

# Graph name used by backends for the store's default graph (updates without GRAPH).
DEFAULT_GRAPH = ""


class GraphBackend(Protocol):
    name: str

    @property
    def dataset(self) -> Dataset:
        """An rdflib Dataset over the same data (for rdflib users and tools)."""

    def graph_names(self) -> list[str]:
        """Named graphs holding at least one triple."""

    def count(self, graph: str | None = None) -> int:
        """Triples in one graph (``DEFAULT_GRAPH`` for the default graph) or in all (None)."""

    def read_triples(
        self, graph: str | None = None, predicate: str | None = None, obj: str | None = None
    ) -> Iterator[tuple[str, str, str, str]]:
        """Quads ``(s, p, o, g)`` as N-Triples strings (g is ``DEFAULT_GRAPH`` or an IRI
        without brackets), optionally only one graph, one predicate IRI, one object term."""

    def read_touching(self, nodes: Iterable[str]) -> Iterator[tuple[str, str, str, str]]:
        """Quads whose subject or object is one of ``nodes`` (N-Triples IRIs/blank nodes)."""

    def contains(self, triples: Iterable[Triple], graph: str | None = None) -> set[Triple]:
        """Those of ``triples`` stored in ``graph`` (in any graph when None)."""

    def update(self, sparql: str) -> None:
        """Run one SPARQL 1.1 update request as one transaction where the backend can."""

    def insert_atomic(self, quads: Sequence[tuple[str, str, str, str]]) -> None:
        """Add quads ``(s, p, o, graph)`` in one transaction."""

    def bulk_insert(self, graph: str, triples: Sequence[Triple]) -> None:
        """Add many triples to ``graph`` as fast as the backend allows (not atomic)."""

    def drop_graph(self, graph: str) -> None:
        """Remove a named graph and its triples; no error if absent."""

    def query(self, sparql: str, form: QueryForm, *, timeout: float, max_rows: int = 0,
              prefixes: dict[str, str] | None = None) -> QueryResult:
        """A read-only query over the union of all graphs."""

    def export(self, out: IO[bytes], fmt: str, graph: str | None = None) -> None:
        """Write the whole dataset (quad formats) or one graph."""

    def compact(self) -> None:
        """Reclaim space and read speed after a large deletion (no-op where the server
        manages that itself)."""

    def close(self) -> None: ...


def insert_data(graph: str, triples: Sequence[Triple]) -> str:
    """``INSERT DATA`` for ``triples`` into ``graph`` (empty string when nothing to add)."""
    if not triples:
        return ""
    body = "\n".join(f"{s} {p} {o} ." for s, p, o in triples)
    return f"INSERT DATA {{ GRAPH <{graph}> {{\n{body}\n}} }}"
