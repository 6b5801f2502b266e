"""What a SPARQL request is, what it may do, and the shape of its results.

A small lexer (comments, strings and IRIs removed) tells a query from an update and
finds ``SERVICE`` without parsing the whole grammar, so the same policy applies to every
backend, including endpoints whose dialect rdflib's parser would reject.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Iterator, Literal as TLiteral, Sequence

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Identifier

from kg.errors import QueryError, QueryForbiddenError

QueryForm = TLiteral["SELECT", "ASK", "CONSTRUCT", "DESCRIBE", "UPDATE"]

_COMMENT_STRING_IRI = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r'|<[^<>"{}|^`\\\x00-\x20]*>'
    r"|#[^\n]*",
    re.DOTALL,
)
_KEYWORD = re.compile(
    r"(?<![\w:?$@-])(SELECT|ASK|CONSTRUCT|DESCRIBE|INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)(?![\w:-])",
    re.IGNORECASE,
)
_SERVICE = re.compile(r"(?<![\w:?$@-])SERVICE(?![\w:-])", re.IGNORECASE)


@lru_cache(maxsize=512)
def _strip(text: str) -> str:
    """The request without comments, strings and IRIs (cached: a request is lexed once
    for its form, SERVICE and blocking operators)."""
    return _COMMENT_STRING_IRI.sub(" ", text)


def classify(text: str) -> QueryForm:
    """SELECT/ASK/CONSTRUCT/DESCRIBE for queries, UPDATE for any update request."""
    match = _KEYWORD.search(_strip(text))
    if match is None:
        raise QueryError("not a SPARQL query or update: expected SELECT, ASK, CONSTRUCT, "
                         "DESCRIBE or an update operation")
    word = match.group(1).upper()
    return word if word in ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE") else "UPDATE"  # type: ignore[return-value]


def uses_service(text: str) -> bool:
    return _SERVICE.search(_strip(text)) is not None


_BLOCKING = re.compile(
    r"(?<![\w:?$@-])(ORDER\s+BY|GROUP\s+BY|HAVING|COUNT|SUM|MIN|MAX|AVG|SAMPLE|GROUP_CONCAT)(?![\w:-])",
    re.IGNORECASE,
)


def evaluates_before_first_row(text: str) -> bool:
    """Whether the query sorts or aggregates, which engines finish before the first row."""
    return _BLOCKING.search(_strip(text)) is not None


def check_allowed(text: str, *, allow_update: bool, allow_service: bool) -> QueryForm:
    """Classify ``text`` and refuse what the caller has not allowed."""
    form = classify(text)
    if form == "UPDATE" and not allow_update:
        raise QueryForbiddenError(
            "this is a SPARQL update and the store is read-only by default; pass --update "
            "to modify it")
    if not allow_service and uses_service(text):
        raise QueryForbiddenError(
            "federated SERVICE calls are refused; pass --allow-service (or set "
            "query.allow_service) to let the query reach other endpoints")
    return form


@dataclass
class QueryResult:
    """Results with rdflib terms, whatever the backend."""

    form: QueryForm
    vars: list[str] = field(default_factory=list)
    rows: list[tuple[Identifier | None, ...]] = field(default_factory=list)
    boolean: bool | None = None
    graph: Graph | None = None  # CONSTRUCT / DESCRIBE
    truncated: bool = False

    def __iter__(self) -> Iterator[tuple[Identifier | None, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        if self.form in ("CONSTRUCT", "DESCRIBE"):
            return len(self.graph) if self.graph is not None else 0
        return len(self.rows)

    def column(self, name: str) -> list[Identifier | None]:
        i = self.vars.index(name)
        return [row[i] for row in self.rows]


def term_from_json(binding: dict[str, str]) -> Identifier:
    """One value of the W3C SPARQL JSON results format as an rdflib term."""
    kind, value = binding["type"], binding["value"]
    if kind == "uri":
        return URIRef(value)
    if kind == "bnode":
        return BNode(value)
    if kind in ("literal", "typed-literal"):
        lang = binding.get("xml:lang")
        dtype = binding.get("datatype")
        return Literal(value, lang=lang, datatype=URIRef(dtype) if dtype and not lang else None)
    raise QueryError(f"unexpected term type {kind!r} in SPARQL results")


def rows_from_json(data: dict, names: Sequence[str]) -> list[tuple[Identifier | None, ...]]:
    return [
        tuple(term_from_json(b[n]) if n in b else None for n in names)
        for b in data["results"]["bindings"]
    ]
