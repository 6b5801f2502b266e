from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest

from kg.config import ImportSettings
from kg.errors import SourceError
from kg.importers import read_source
from kg.vocab import Vocabulary, name_to_segment

V = Vocabulary()
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
KNOWS = ("<http://example.org/alice>", "<http://example.org/knows>", "<http://example.org/bob>")
AGE = ("<http://example.org/bob>", "<http://example.org/age>",
       '"42"^^<http://www.w3.org/2001/XMLSchema#integer>')


@pytest.mark.parametrize("name", ["tiny.ttl", "tiny.nt", "tiny.nq", "tiny.trig", "tiny.jsonld", "tiny.rdf"])
def test_rdf_formats_give_the_same_triples(fixtures_dir: Path, name: str) -> None:
    parsed = read_source(fixtures_dir / name, None, V, ImportSettings())
    assert KNOWS in parsed.triples and AGE in parsed.triples
    assert ("<http://example.org/alice>", LABEL, '"Alice"@en') in parsed.triples
    assert parsed.content_hash.startswith("sha256:")


def test_blank_nodes_are_renamed_per_parse(fixtures_dir: Path) -> None:
    a = read_source(fixtures_dir / "tiny.ttl", None, V, ImportSettings())
    b = read_source(fixtures_dir / "tiny.ttl", None, V, ImportSettings())
    bnodes = lambda p: {t for tr in p.triples for t in tr if t.startswith("_:")}  # noqa: E731
    assert bnodes(a) and not bnodes(a) & bnodes(b)


def test_malformed_rdf_names_file_and_line(fixtures_dir: Path) -> None:
    with pytest.raises(SourceError) as info:
        read_source(fixtures_dir / "broken.ttl", None, V, ImportSettings())
    assert info.value.file.endswith("broken.ttl")
    assert info.value.line in (3, 4)
    assert "broken.ttl" in str(info.value) and "line" in str(info.value)


def test_delimited_line_with_wrong_field_count(fixtures_dir: Path) -> None:
    with pytest.raises(SourceError) as info:
        read_source(fixtures_dir / "broken.txt", None, V, ImportSettings())
    assert info.value.line == 2
    assert "broken.txt:2" in str(info.value) and "3 fields" in str(info.value)


def test_pipe_file_mints_iris_and_labels(tmp_path: Path) -> None:
    f = tmp_path / "kb.txt"
    f.write_text("Kismet|directed_by|William Dieterle\nKismet|release_year|1955\n"
                 "Tom Hanks|starred_in|Big\n", encoding="utf-8")
    parsed = read_source(f, None, V, ImportSettings())
    kismet = f"<{V.entity('Kismet')}>"
    assert kismet == "<https://w3id.org/kgchat/entity/Kismet>"
    assert (kismet, f"<{V.relation('directed_by')}>", f"<{V.entity('William Dieterle')}>") in parsed.triples
    # by default a year is just another entity (MetaQA's intent) with its label
    assert (kismet, f"<{V.relation('release_year')}>", f"<{V.entity('1955')}>") in parsed.triples
    assert (f"<{V.entity('1955')}>", LABEL, '"1955"') in parsed.triples
    labels = [t for t in parsed.triples if t[1] == LABEL]
    assert len(labels) == len({t[0] for t in labels}) == 8  # 5 entities + 3 relations, once each
    assert (f"<{V.entity('Tom Hanks')}>", LABEL, '"Tom Hanks"') in parsed.triples
    assert parsed.format == "pipe"


def test_same_name_same_iri_across_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.tsv"
    a.write_text("Tom Hanks|acted_in|Big\n", encoding="utf-8")
    b.write_text("Big\tdirected_by\tPenny Marshall\nTom Hanks\tborn_in\tConcord\n", encoding="utf-8")
    ta = read_source(a, None, V, ImportSettings()).triples
    tb = read_source(b, None, V, ImportSettings()).triples
    subjects_a = {t[0] for t in ta} | {t[2] for t in ta}
    subjects_b = {t[0] for t in tb} | {t[2] for t in tb}
    assert f"<{V.entity('Tom Hanks')}>" in subjects_a & subjects_b
    assert f"<{V.entity('Big')}>" in subjects_a & subjects_b


def test_typed_literals_only_when_settings_say_so(fixtures_dir: Path) -> None:
    off = read_source(fixtures_dir / "tiny.tsv", None, V, ImportSettings())
    assert not any("XMLSchema" in t[2] for t in off.triples)
    auto = read_source(fixtures_dir / "tiny.tsv", None, V, ImportSettings(literals="auto"))
    year = (f"<{V.entity('Bob')}>", f"<{V.relation('birth_year')}>",
            '"1990"^^<http://www.w3.org/2001/XMLSchema#gYear>')
    assert year in auto.triples
    # names stay entities even in auto mode
    assert (f"<{V.entity('Bob')}>", f"<{V.relation('born_in')}>", f"<{V.entity('Leeds')}>") in auto.triples
    rel = read_source(fixtures_dir / "tiny.tsv", None, V, ImportSettings(literal_relations=["born_in"]))
    assert (f"<{V.entity('Bob')}>", f"<{V.relation('born_in')}>", '"Leeds"') in rel.triples
    assert off.version != auto.version != rel.version  # settings change what was imported


@pytest.mark.parametrize("name", ["Tom Hanks", "Amélie", "AC/DC", "100% Love", "What's Up, Doc?",
                                  "C++ <3 \"quoted\"", "  spaced   out  ", "a#b?c"])
def test_minted_iris_are_valid_and_deterministic(name: str) -> None:
    iri = V.entity(name)
    ox.NamedNode(iri)  # raises on an invalid IRI
    assert iri == Vocabulary().entity(name)
    assert "#" not in iri[len(str(V.ENT)):] and "?" not in iri and " " not in iri


def test_segment_normalises_whitespace() -> None:
    assert name_to_segment("Tom  Hanks") == name_to_segment("Tom Hanks") == "Tom_Hanks"
    with pytest.raises(ValueError):
        name_to_segment("   ")


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "kb.weird"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(SourceError, match="--format"):
        read_source(f, None, V, ImportSettings())
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "absent.ttl", None, V, ImportSettings())


def test_non_utf8_delimited_file(tmp_path: Path) -> None:
    f = tmp_path / "latin1.txt"
    f.write_bytes("A|b|c\nCaf\xe9|is|open\n".encode("latin-1"))
    with pytest.raises(SourceError) as info:
        read_source(f, None, V, ImportSettings())
    assert info.value.line == 2 and "UTF-8" in str(info.value)
