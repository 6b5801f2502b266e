"""Write query results in the W3C SPARQL 1.1 results formats, or as a terminal table.

JSON: https://www.w3.org/TR/sparql11-results-json/ · CSV/TSV:
https://www.w3.org/TR/sparql11-results-csv-tsv/ · XML: https://www.w3.org/TR/rdf-sparql-XMLres/.
CONSTRUCT and DESCRIBE results are RDF and are written in an RDF syntax.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Identifier

from kg.errors import QueryError
from kg.sparql import QueryResult

RESULT_FORMATS = ("table", "json", "csv", "tsv", "xml")
GRAPH_FORMATS = {"turtle": "turtle", "ntriples": "nt", "nquads": "nquads", "jsonld": "json-ld",
                 "rdfxml": "xml", "trig": "trig", "table": "turtle"}
_BARE_NUMBERS = {XSD.integer, XSD.decimal, XSD.double, XSD.boolean}


def nt_term(term: Identifier | None) -> str:
    """A term in N-Triples/Turtle syntax (as TSV results require)."""
    if term is None:
        return ""
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, BNode):
        return f"_:{term}"
    if isinstance(term, Literal):
        lex = (str(term).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
        if term.language:
            return f'"{lex}"@{term.language}'
        if term.datatype and term.datatype != XSD.string:
            return f'"{lex}"^^<{term.datatype}>'
        return f'"{lex}"'
    return str(term)


def json_term(term: Identifier) -> dict[str, str]:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    if isinstance(term, Literal):
        out = {"type": "literal", "value": str(term)}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype and term.datatype != XSD.string:
            out["datatype"] = str(term.datatype)
        return out
    raise QueryError(f"cannot write {term!r} as a SPARQL JSON term")


def to_json(result: QueryResult) -> str:
    if result.form == "ASK":
        return json.dumps({"head": {}, "boolean": bool(result.boolean)})
    bindings = [
        {name: json_term(value) for name, value in zip(result.vars, row) if value is not None}
        for row in result.rows
    ]
    return json.dumps({"head": {"vars": result.vars}, "results": {"bindings": bindings}},
                      ensure_ascii=False)


def to_csv(result: QueryResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if result.form == "ASK":
        writer.writerow(["_askResult"])
        writer.writerow(["true" if result.boolean else "false"])
        return buf.getvalue()
    writer.writerow(result.vars)
    for row in result.rows:
        writer.writerow(["" if v is None else (f"_:{v}" if isinstance(v, BNode) else str(v))
                         for v in row])
    return buf.getvalue()


def to_tsv(result: QueryResult) -> str:
    if result.form == "ASK":
        return "?_askResult\n" + ("true" if result.boolean else "false") + "\n"
    lines = ["\t".join("?" + v for v in result.vars)]
    for row in result.rows:
        cells = []
        for v in row:
            if isinstance(v, Literal) and v.datatype in _BARE_NUMBERS and not v.language:
                cells.append(str(v))
            else:
                cells.append(nt_term(v))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def to_xml(result: QueryResult) -> str:
    out = ['<?xml version="1.0"?>', '<sparql xmlns="http://www.w3.org/2005/sparql-results#">']
    if result.form == "ASK":
        out += ["  <head/>", f"  <boolean>{'true' if result.boolean else 'false'}</boolean>", "</sparql>"]
        return "\n".join(out) + "\n"
    out.append("  <head>")
    out += [f"    <variable name={quoteattr(v)}/>" for v in result.vars]
    out += ["  </head>", "  <results>"]
    for row in result.rows:
        out.append("    <result>")
        for name, v in zip(result.vars, row):
            if v is None:
                continue
            if isinstance(v, URIRef):
                inner = f"<uri>{escape(str(v))}</uri>"
            elif isinstance(v, BNode):
                inner = f"<bnode>{escape(str(v))}</bnode>"
            else:
                attrs = ""
                if v.language:
                    attrs = f" xml:lang={quoteattr(v.language)}"
                elif v.datatype and v.datatype != XSD.string:
                    attrs = f" datatype={quoteattr(str(v.datatype))}"
                inner = f"<literal{attrs}>{escape(str(v))}</literal>"
            out.append(f"      <binding name={quoteattr(name)}>{inner}</binding>")
        out.append("    </result>")
    out += ["  </results>", "</sparql>"]
    return "\n".join(out) + "\n"


def compact(term: Identifier | None, prefixes: Mapping[str, str]) -> str:
    """A short human form: prefixed IRIs, bare literal text."""
    if term is None:
        return ""
    if isinstance(term, URIRef):
        text = str(term)
        best = max(((p, ns) for p, ns in prefixes.items() if text.startswith(ns)),
                   key=lambda item: len(item[1]), default=None)
        return f"{best[0]}:{text[len(best[1]):]}" if best else f"<{text}>"
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def write_table(result: QueryResult, prefixes: Mapping[str, str], console: object) -> None:
    from rich.table import Table

    if result.form == "ASK":
        console.print("true" if result.boolean else "false")  # type: ignore[attr-defined]
        return
    table = Table(*result.vars, show_lines=False, header_style="bold")
    for row in result.rows:
        table.add_row(*(compact(v, prefixes) for v in row))
    console.print(table)  # type: ignore[attr-defined]
    note = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
    if result.truncated:
        note += " (truncated by query.max_rows)"
    console.print(f"[dim]{note}[/dim]")  # type: ignore[attr-defined]


SERIALIZERS: dict[str, Callable[[QueryResult], str]] = {
    "json": to_json, "csv": to_csv, "tsv": to_tsv, "xml": to_xml,
}


def serialize_graph(result: QueryResult, fmt: str) -> str:
    if result.graph is None:
        raise QueryError("no graph to serialize")
    rdflib_fmt = GRAPH_FORMATS.get(fmt)
    if rdflib_fmt is None:
        raise QueryError(f"CONSTRUCT/DESCRIBE results are RDF: use one of {', '.join(GRAPH_FORMATS)}")
    return result.graph.serialize(format=rdflib_fmt)


