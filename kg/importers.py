"""Read knowledge-base files into triples, ready for the store.

Triples travel as tuples of N-Triples term strings (``<iri>``, ``"text"@en``,
``"1999"^^<…#gYear>``, ``_:b1``): every backend can write them without converting
term objects, and they are what :mod:`kg.reason` works on.

RDF formats are parsed by Oxigraph's Rust parsers; plain delimited files
(``subject|relation|object`` as in MetaQA's kb.txt, or tab-separated) are mapped to
IRIs minted by :class:`kg.vocab.Vocabulary` with an ``rdfs:label`` holding the name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pyoxigraph as ox

from kg.config import ImportSettings
from kg.errors import SourceError
from kg.vocab import RDFS, XSD, Vocabulary

Triple = tuple[str, str, str]

RDF_FORMATS: dict[str, ox.RdfFormat] = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "jsonld": ox.RdfFormat.JSON_LD,
    "rdfxml": ox.RdfFormat.RDF_XML,
    "n3": ox.RdfFormat.N3,
}
DELIMITED_FORMATS = ("pipe", "tsv")
FORMATS = tuple(RDF_FORMATS) + DELIMITED_FORMATS + ("delimited",)

_EXTENSIONS = {
    ".ttl": "turtle", ".turtle": "turtle", ".nt": "ntriples", ".ntriples": "ntriples",
    ".nq": "nquads", ".nquads": "nquads", ".trig": "trig", ".jsonld": "jsonld",
    ".json-ld": "jsonld", ".rdf": "rdfxml", ".owl": "rdfxml", ".xml": "rdfxml",
    ".n3": "n3", ".tsv": "tsv", ".psv": "pipe", ".txt": "delimited", ".kb": "delimited",
}
_LINE_COL = re.compile(r"line (\d+)", re.IGNORECASE)


@dataclass
class SourceFile:
    """A file identified but not yet parsed: enough to tell whether it changed."""

    path: Path
    uri: str
    format: str  # as requested or guessed ("delimited" until the delimiter is sniffed)
    data: bytes
    content_hash: str  # "sha256:<hex>" of the file's bytes
    options: dict[str, object]  # the settings that shape its triples

    @property
    def version(self) -> str:
        """Identifies this content *as imported*: bytes plus the options that shape triples."""
        key = json.dumps([self.content_hash, self.format, self.options], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class ParsedSource:
    path: Path | str  # a file, or the URI of a source that is not one
    uri: str
    format: str  # the format actually read (pipe or tsv for delimited files)
    content_hash: str
    triples: list[Triple]
    options: dict[str, object]
    version: str


def guess_format(path: Path) -> str:
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise SourceError(path, f"cannot tell the format from the extension {path.suffix!r} "
                                f"(known: {known}); pass --format")
    return fmt


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders become the files below them with a known extension."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in _EXTENSIONS
                              and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        else:
            out.append(path)
    return out


def file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def open_source(path: Path, fmt: str | None, vocab: Vocabulary, settings: ImportSettings) -> SourceFile:
    """Read and hash one file; raise :class:`SourceError` when it cannot be imported."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "no such file" if not path.exists() else "not a regular file")
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise SourceError(path, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    data = path.read_bytes()
    options: dict[str, object] = {}
    if fmt not in RDF_FORMATS:
        options = {"delimiter": settings.delimiter, "literals": settings.literals,
                   "literal_relations": sorted(settings.literal_relations), "base": vocab.base}
    return SourceFile(path, path.resolve().as_uri(), fmt, data, file_hash(data), options)


def parse_source(src: SourceFile, vocab: Vocabulary, settings: ImportSettings) -> ParsedSource:
    """Parse a whole file; raise :class:`SourceError` naming file and line."""
    fmt = src.format
    if fmt in RDF_FORMATS:
        triples = _parse_rdf(src.path, src.data, fmt, src.uri)
    else:
        text = _decode(src.path, src.data)
        delim = _delimiter(src.path, text, fmt, settings)
        triples = parse_delimited(src.path, text, delim, vocab, settings)
        fmt = "tsv" if delim == "\t" else "pipe"
    return ParsedSource(src.path, src.uri, fmt, src.content_hash, triples, src.options, src.version)


def read_source(path: Path, fmt: str | None, vocab: Vocabulary, settings: ImportSettings) -> ParsedSource:
    return parse_source(open_source(path, fmt, vocab, settings), vocab, settings)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", line) from exc


def _parse_rdf(path: Path, data: bytes, fmt: str, base_iri: str) -> list[Triple]:
    # Blank nodes are renamed so two files' `_:b0` never become one node.
    try:
        quads = ox.parse(data, format=RDF_FORMATS[fmt], base_iri=base_iri, rename_blank_nodes=True)
        # Graph names in N-Quads/TriG are dropped: the whole file is one source graph.
        return [(str(q.subject), str(q.predicate), str(q.object)) for q in quads]
    except SyntaxError as exc:
        msg = str(exc)
        match = _LINE_COL.search(msg)
        line = int(match.group(1)) if match else None
        # Oxigraph counts lines from 0 in some parsers and from 1 in others; its
        # message already says "line N column M", so keep the message verbatim.
        raise SourceError(path, f"invalid {fmt}: {msg}", line) from exc
    except ValueError as exc:
        raise SourceError(path, f"invalid {fmt}: {exc}") from exc


def _delimiter(path: Path, text: str, fmt: str, settings: ImportSettings) -> str:
    if fmt == "tsv":
        return "\t"
    if fmt == "pipe":
        return "|"
    if settings.delimiter != "auto":
        return settings.delimiter
    sample = [ln for ln in text.splitlines()[:50] if ln.strip() and not ln.startswith("#")]
    if not sample:
        return "|"
    pipes = sum(ln.count("|") == 2 for ln in sample)
    tabs = sum(ln.count("\t") == 2 for ln in sample)
    if pipes == 0 and tabs == 0:
        raise SourceError(path, "not a delimited triple file: expected lines of "
                                "`subject|relation|object` or three tab-separated fields", 1)
    return "\t" if tabs > pipes else "|"


# -- delimited files ---------------------------------------------------------------

_YEAR = re.compile(r"^[12]\d{3}$")
_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


def nt_literal(text: str, datatype: str | None = None) -> str:
    """An N-Triples literal; ``datatype`` is a full IRI (plain string when None)."""
    esc = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
           .replace("\r", "\\r"))
    return f'"{esc}"' if datatype is None else f'"{esc}"^^<{datatype}>'


def typed_literal(text: str, relation: str) -> str | None:
    """The typed literal ``text`` looks like, or None when it looks like a name."""
    if _YEAR.match(text) and "year" in relation.lower():
        return nt_literal(text, str(XSD.gYear))
    if _INT.match(text):
        return nt_literal(text, str(XSD.integer))
    if _DEC.match(text):
        return nt_literal(text, str(XSD.decimal))
    if _DATE.match(text):
        return nt_literal(text, str(XSD.date))
    if _DATETIME.match(text):
        return nt_literal(text, str(XSD.dateTime))
    return None


def parse_delimited(
    path: Path, text: str, delim: str, vocab: Vocabulary, settings: ImportSettings
) -> list[Triple]:
    """``subject<delim>relation<delim>object`` lines → triples plus one label per name."""
    label = f"<{RDFS.label}>"
    auto = settings.literals == "auto"
    literal_rels = set(settings.literal_relations)
    out: list[Triple] = []
    ents: dict[str, str] = {}
    rels: dict[str, str] = {}

    def entity(name: str) -> str:
        iri = ents.get(name)
        if iri is None:
            iri = ents[name] = f"<{vocab.entity(name)}>"
            out.append((iri, label, nt_literal(name)))
        return iri

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(delim)
        if len(parts) != 3:
            shown = "|" if delim == "|" else "TAB"
            raise SourceError(path, f"expected 3 fields separated by {shown}, found {len(parts)}: "
                                    f"{line[:80]!r}", lineno)
        s, r, o = (p.strip() for p in parts)
        if not (s and r and o):
            raise SourceError(path, f"empty field in {line[:80]!r}", lineno)
        rel = rels.get(r)
        if rel is None:
            rel = rels[r] = f"<{vocab.relation(r)}>"
            out.append((rel, label, nt_literal(r)))
        obj = None
        if r in literal_rels:
            obj = typed_literal(o, r) or nt_literal(o)
        elif auto:
            obj = typed_literal(o, r)
        out.append((entity(s), rel, obj if obj is not None else entity(o)))
    return out


def dedupe(triples: Iterable[Triple]) -> list[Triple]:
    """Drop repeated triples, keeping first-seen order."""
    return list(dict.fromkeys(triples))
