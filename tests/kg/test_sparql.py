"""Telling queries from updates, finding SERVICE, and the W3C result formats."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD

from kg.errors import QueryError, QueryForbiddenError
from kg.results import to_csv, to_json, to_tsv, to_xml
from kg.sparql import QueryResult, check_allowed, classify, uses_service


@pytest.mark.parametrize("text, form", [
    ("SELECT * WHERE { ?s ?p ?o }", "SELECT"),
    ("PREFIX insert: <http://x/> SELECT ?s { ?s insert:p ?o }", "SELECT"),
    ("# DELETE everything\nASK { ?s ?p ?o }", "ASK"),
    ('BASE <http://x/> CONSTRUCT { ?s ?p "DROP" } WHERE { ?s ?p ?o }', "CONSTRUCT"),
    ("describe <http://x/a>", "DESCRIBE"),
    ("INSERT DATA { <a> <b> <c> }", "UPDATE"),
    ("PREFIX ex: <http://x/>\nWITH ex:g DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", "UPDATE"),
    ("drop silent graph <http://x/g>", "UPDATE"),
    ("LOAD <http://x/data.ttl>", "UPDATE"),
    ("SELECT ?select WHERE { ?select <http://x/delete> ?o }", "SELECT"),
])
def test_classify(text: str, form: str) -> None:
    assert classify(text) == form


def test_not_sparql() -> None:
    with pytest.raises(QueryError):
        classify("hello world")


@pytest.mark.parametrize("text, expected", [
    ("SELECT * { SERVICE <http://e/sparql> { ?s ?p ?o } }", True),
    ("SELECT * { service silent <http://e/sparql> { ?s ?p ?o } }", True),
    ('SELECT * { ?s ?p "SERVICE <http://e/>" }', False),
    ("SELECT * { ?s <http://x/SERVICE> ?o }", False),
    ("PREFIX service: <http://x/> SELECT * { ?s service:p ?o }", False),
    ("SELECT ?service { ?service ?p ?o } # SERVICE in a comment", False),
])
def test_service_detection(text: str, expected: bool) -> None:
    assert uses_service(text) is expected


def test_check_allowed() -> None:
    with pytest.raises(QueryForbiddenError):
        check_allowed("CLEAR ALL", allow_update=False, allow_service=False)
    assert check_allowed("CLEAR ALL", allow_update=True, allow_service=False) == "UPDATE"
    with pytest.raises(QueryForbiddenError):
        check_allowed("SELECT * { SERVICE <x:y> {} }", allow_update=True, allow_service=False)


RESULT = QueryResult(
    "SELECT", vars=["s", "o"],
    rows=[(URIRef("http://x/a"), Literal("say \"hi\"\tnow", lang="en")),
          (BNode("b1"), Literal("5", datatype=XSD.integer)),
          (URIRef("http://x/c"), None),
          (URIRef("http://x/d"), Literal("a,b\nc"))],
)


def _ox_parse(data: str, fmt: ox.QueryResultsFormat) -> list[list[str | None]]:
    parsed = ox.parse_query_results(data.encode(), format=fmt)
    return [[None if sol[v] is None else str(sol[v]) for v in ("s", "o")] for sol in parsed]


def test_json_csv_tsv_xml_parse_back_with_oxigraph() -> None:
    """An independent parser (Oxigraph's) must read what we write."""
    expected_json = _ox_parse(to_json(RESULT), ox.QueryResultsFormat.JSON)
    assert expected_json[0] == ["<http://x/a>", '"say \\"hi\\"\\tnow"@en']
    assert expected_json[1][1] == '"5"^^<http://www.w3.org/2001/XMLSchema#integer>'
    assert expected_json[2][1] is None
    assert _ox_parse(to_tsv(RESULT), ox.QueryResultsFormat.TSV)[:2] == expected_json[:2]
    assert _ox_parse(to_xml(RESULT), ox.QueryResultsFormat.XML) == expected_json
    rows = to_csv(RESULT).split("\r\n")
    assert rows[0] == "s,o" and rows[1] == 'http://x/a,"say ""hi""\tnow"'
    assert rows[2] == "_:b1,5"


def test_ask_formats() -> None:
    ask = QueryResult("ASK", boolean=True)
    assert json.loads(to_json(ask)) == {"head": {}, "boolean": True}
    assert bool(ox.parse_query_results(to_xml(ask).encode(), format=ox.QueryResultsFormat.XML))
