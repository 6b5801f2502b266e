"""The contract every graph backend keeps, run against each of them.

``oxigraph`` runs everywhere; ``virtuoso`` (marker ``server``) starts a real Virtuoso once
per session (see ``tests/kg/virtuoso.py``) and is skipped where it is not installed.
"""

from __future__ import annotations

import http.server
import io
import shutil
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest
from rdflib import Dataset, Graph, Literal, URIRef

from kg.backends.base import GraphBackend
from kg.backends.oxigraph import OxigraphBackend
from kg.backends.sparql import SparqlBackend, skolemize
from kg.config import StoreSettings, load_settings
from kg.errors import ConfigError, QueryError, QueryTimeoutError, StoreError
from kg.store import KnowledgeStore
from kg.vocab import RDFS, Vocabulary

from tests.kg.virtuoso import VirtuosoServer, virtuoso_clean, virtuoso_endpoint  # noqa: F401

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "kb"
XSD = "http://www.w3.org/2001/XMLSchema#"
G1 = "https://w3id.org/kgchat/graph/test/one"
G2 = "https://w3id.org/kgchat/graph/test/two"
NAME, AGE, KNOWS = "<http://example.org/name>", "<http://example.org/age>", "<http://example.org/knows>"
ALICE, BOB, CAROL = "<http://example.org/alice>", "<http://example.org/bob>", "<http://example.org/carol>"
TRICKY = '"a \\"quoted\\" line\\nnext\\ttab \\\\ back ü 日本 😀"'
ONE = [
    (ALICE, NAME, '"Alice"@en'),
    (ALICE, NAME, '"Alicia"@es'),
    (ALICE, AGE, f'"42"^^<{XSD}integer>'),
    (ALICE, AGE, f'"1982"^^<{XSD}gYear>'),
    (ALICE, KNOWS, BOB),
    (BOB, NAME, TRICKY),
    (BOB, NAME, '"plain"'),
]
TWO = [(BOB, KNOWS, CAROL), (CAROL, NAME, '"Carol"')]

BACKENDS = ["oxigraph", pytest.param("virtuoso", marks=pytest.mark.server)]


def sparql_settings(server: VirtuosoServer, **extra: object) -> StoreSettings:
    return StoreSettings(backend="sparql", query_endpoint=server.query_endpoint,
                         update_endpoint=server.update_endpoint, **extra)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphBackend]:
    if request.param == "oxigraph":
        opened: GraphBackend = OxigraphBackend.open(tmp_path / "graph")
    else:
        opened = SparqlBackend.open(sparql_settings(request.getfixturevalue("virtuoso_clean")))
    yield opened
    opened.close()


@pytest.fixture
def loaded(backend: GraphBackend) -> GraphBackend:
    backend.bulk_insert(G1, ONE)
    backend.bulk_insert(G2, TWO)
    return backend


def quads(backend: GraphBackend, graph: str | None = None, predicate: str | None = None) -> set:
    return set(backend.read_triples(graph, predicate))


# -- backend contract -------------------------------------------------------------------
def test_bulk_insert_count_and_graph_names(loaded: GraphBackend) -> None:
    assert loaded.graph_names() == [G1, G2]
    assert loaded.count(G1) == len(ONE)
    assert loaded.count(G2) == len(TWO)
    assert loaded.count() == len(ONE) + len(TWO)
    assert loaded.count("https://w3id.org/kgchat/graph/test/absent") == 0


def test_read_triples_returns_what_was_written(loaded: GraphBackend) -> None:
    assert quads(loaded, G1) == {(*t, G1) for t in ONE}
    assert quads(loaded) == {(*t, G1) for t in ONE} | {(*t, G2) for t in TWO}
    assert quads(loaded, predicate=NAME[1:-1]) == (
        {(*t, G1) for t in ONE if t[1] == NAME} | {(*t, G2) for t in TWO if t[1] == NAME})
    assert quads(loaded, G2, KNOWS[1:-1]) == {(BOB, KNOWS, CAROL, G2)}


def test_read_triples_pages_through_big_graphs(backend: GraphBackend) -> None:
    if isinstance(backend, SparqlBackend):
        backend.page_size = 7  # many pages, one short last page
    triples = [(f"<http://example.org/n{i}>", NAME, f'"{i}"') for i in range(50)]
    backend.bulk_insert(G1, triples)
    assert quads(backend, G1) == {(*t, G1) for t in triples}


def test_update_replaces_a_graph_in_one_request(loaded: GraphBackend) -> None:
    loaded.update(f"DROP SILENT GRAPH <{G1}> ;\n"
                  f"DELETE WHERE {{ GRAPH <{G2}> {{ ?s {NAME} ?o }} }} ;\n"
                  f"INSERT DATA {{ GRAPH <{G1}> {{ {CAROL} {KNOWS} {ALICE} . }} }}")
    assert quads(loaded, G1) == {(CAROL, KNOWS, ALICE, G1)}
    assert quads(loaded, G2) == {(BOB, KNOWS, CAROL, G2)}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside rdflib
def test_dataset_is_an_rdflib_view(loaded: GraphBackend) -> None:
    knows = (URIRef(ALICE[1:-1]), URIRef(KNOWS[1:-1]), URIRef(BOB[1:-1]))
    assert isinstance(loaded.dataset, Dataset)
    assert knows in loaded.dataset  # the union of all graphs
    ask = "ASK {{ GRAPH <{}> {{ {} {} {} }} }}"
    assert loaded.dataset.query(ask.format(G1, ALICE, KNOWS, BOB)).askAnswer
    assert not loaded.dataset.query(ask.format(G2, ALICE, KNOWS, BOB)).askAnswer


def test_drop_graph(loaded: GraphBackend) -> None:
    loaded.drop_graph(G1)
    loaded.drop_graph("https://w3id.org/kgchat/graph/test/absent")
    assert loaded.graph_names() == [G2]
    assert quads(loaded, G1) == set()


def test_blank_nodes_keep_their_structure(backend: GraphBackend) -> None:
    backend.bulk_insert(G1, [(ALICE, KNOWS, "_:b1"), ("_:b1", NAME, '"anon"')])
    backend.update(f"INSERT DATA {{ GRAPH <{G2}> {{ _:c {NAME} \"other\" }} }}")
    (s, p, o, g), = quads(backend, G1, KNOWS[1:-1])
    assert o.startswith("_:")
    assert quads(backend, G1, NAME[1:-1]) == {(o, NAME, '"anon"', G1)}
    assert backend.contains([(o, NAME, '"anon"')], G1) == {(o, NAME, '"anon"')}
    assert {q[2] for q in backend.read_touching([o])} == {o, '"anon"'}
    (s2, *_), = quads(backend, G2)
    assert s2.startswith("_:") and s2 != o


def test_query_select_sees_the_union_of_all_graphs(loaded: GraphBackend) -> None:
    res = loaded.query("SELECT ?a ?b WHERE { ?a ex:knows ?b }", "SELECT", timeout=30,
                       prefixes={"ex": "http://example.org/"})
    assert res.vars == ["a", "b"]
    got = {(str(a), str(b)) for a, b in res.rows}
    assert got == {(ALICE[1:-1], BOB[1:-1]), (BOB[1:-1], CAROL[1:-1])}
    res = loaded.query(f"SELECT ?n WHERE {{ {BOB} {NAME} ?n }}", "SELECT", timeout=30)
    assert {r[0] for r in res.rows} == {Literal('a "quoted" line\nnext\ttab \\ back ü 日本 😀'),
                                         Literal("plain")}


def test_query_ask_and_construct(loaded: GraphBackend) -> None:
    assert loaded.query(f"ASK {{ {ALICE} {KNOWS} ?x }}", "ASK", timeout=30).boolean is True
    assert loaded.query(f"ASK {{ {CAROL} {KNOWS} ?x }}", "ASK", timeout=30).boolean is False
    res = loaded.query(f"CONSTRUCT {{ ?s {KNOWS} ?o }} WHERE {{ ?s {KNOWS} ?o }}", "CONSTRUCT",
                       timeout=30)
    assert isinstance(res.graph, Graph)
    knows = URIRef(KNOWS[1:-1])
    assert set(res.graph) == {(URIRef(ALICE[1:-1]), knows, URIRef(BOB[1:-1])),
                              (URIRef(BOB[1:-1]), knows, URIRef(CAROL[1:-1]))}


def test_query_max_rows_truncates(loaded: GraphBackend) -> None:
    res = loaded.query(f"SELECT ?s ?o WHERE {{ ?s {NAME} ?o }}", "SELECT", timeout=30, max_rows=2)
    assert len(res.rows) == 2 and res.truncated
    res = loaded.query(f"SELECT ?s ?o WHERE {{ ?s {NAME} ?o }}", "SELECT", timeout=30, max_rows=100)
    assert len(res.rows) == 5 and not res.truncated


def test_invalid_requests_raise_query_error(loaded: GraphBackend) -> None:
    with pytest.raises(QueryError):
        loaded.query("SELECT ?s WHERE { ?s ?p ", "SELECT", timeout=30)
    with pytest.raises(QueryError):
        loaded.update("INSERT DATA { GRAPH <urn:test:g> { <urn:test:s> <urn:test:p> }")


def test_contains(loaded: GraphBackend) -> None:
    absent = (CAROL, KNOWS, ALICE)
    asked = [ONE[0], ONE[2], ONE[5], TWO[0], absent]
    assert loaded.contains(asked) == {ONE[0], ONE[2], ONE[5], TWO[0]}
    assert loaded.contains(asked, G1) == {ONE[0], ONE[2], ONE[5]}
    assert loaded.contains([], G1) == set()


def test_read_touching(loaded: GraphBackend) -> None:
    got = set(loaded.read_touching([BOB]))
    assert got == ({(*t, G1) for t in ONE if BOB in (t[0], t[2])}
                   | {(*t, G2) for t in TWO if BOB in (t[0], t[2])})
    assert set(loaded.read_touching([])) == set()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rdflib's N-Quads parser
def test_export_nquads_round_trips(loaded: GraphBackend) -> None:
    out = io.BytesIO()
    loaded.export(out, "nquads")
    ds = Dataset()
    ds.parse(data=out.getvalue().decode("utf-8"), format="nquads")
    expected = Dataset()
    expected.parse(data="".join(f"{s} {p} {o} <{g}> .\n" for s, p, o, g in quads(loaded)),
                   format="nquads")
    assert set(ds.quads()) == set(expected.quads())
    assert len(set(ds.quads())) == len(ONE) + len(TWO)
    one = io.BytesIO()
    loaded.export(one, "turtle", G2)
    assert len(Graph().parse(data=one.getvalue().decode("utf-8"), format="turtle")) == len(TWO)
    trig = io.BytesIO()
    loaded.export(trig, "trig")
    assert len(set(Dataset().parse(data=trig.getvalue().decode("utf-8"), format="trig").quads())) \
        == len(ONE) + len(TWO)
    with pytest.raises(QueryError):
        loaded.export(io.BytesIO(), "turtle")


# -- SPARQL backend specifics (no server needed unless marked) ------------------------------
def test_skolemize_and_update_rewrite() -> None:
    assert skolemize("_:b1", "https://w3id.org/kgchat/") == "<https://w3id.org/kgchat/.well-known/genid/b1>"
    assert skolemize("<urn:x>", "https://w3id.org/kgchat/") == "<urn:x>"
    b = SparqlBackend(StoreSettings(backend="sparql", query_endpoint="http://127.0.0.1:9/sparql"))
    body = "\n".join(f'_:n{i} <urn:p> "x _:no. {{}}" .' for i in range(4_500))
    text = b.prepare_update(f"DROP SILENT GRAPH <urn:g> ; INSERT DATA {{ GRAPH <urn:g> {{\n{body}\n}} }} ;"
                            " DELETE WHERE { GRAPH <urn:g> { _:keep ?p ?o } }")
    assert text.count("INSERT DATA") == 3 and "_:n0 " not in text and text.count("_:no.") == 4_500
    assert "<https://w3id.org/kgchat/.well-known/genid/n4499>" in text and "_:keep" in text


def test_open_needs_an_endpoint_that_answers() -> None:
    with pytest.raises(ConfigError):
        SparqlBackend.open(StoreSettings(backend="sparql"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        SparqlBackend.open(StoreSettings(backend="sparql", query_endpoint=f"http://127.0.0.1:{port}/sparql"))


def test_timeouts_and_server_errors_are_not_swallowed() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/sparql"
        b = SparqlBackend(StoreSettings(backend="sparql", query_endpoint=url, request_timeout=0.5))
        with pytest.raises(QueryTimeoutError):
            b.query("ASK {}", "ASK", timeout=0.5)
        with pytest.raises(QueryTimeoutError):
            b.update("DROP SILENT GRAPH <urn:test:g>")

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"overloaded")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        b = SparqlBackend(StoreSettings(backend="sparql",
                                        query_endpoint=f"http://127.0.0.1:{server.server_port}/sparql"))
        with pytest.raises(StoreError, match="overloaded"):
            b.count()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.server
def test_virtuoso_digest_auth(virtuoso_clean: VirtuosoServer) -> None:
    url = virtuoso_clean.auth_endpoint
    b = SparqlBackend.open(StoreSettings(backend="sparql", query_endpoint=url, user="dba", password="dba"))
    b.bulk_insert(G1, ONE[:2])
    assert b.count(G1) == 2
    b.close()
    with pytest.raises(StoreError, match="401"):
        SparqlBackend.open(StoreSettings(backend="sparql", query_endpoint=url, user="dba", password="wrong"))


@pytest.mark.server
def test_virtuoso_big_updates_are_split(virtuoso_clean: VirtuosoServer) -> None:
    b = SparqlBackend.open(sparql_settings(virtuoso_clean))
    triples = [(f"<http://example.org/n{i}>", NAME, f'"name {i} ü"@en') for i in range(12_000)]
    b.update(f"INSERT DATA {{ GRAPH <{G1}> {{\n" + "\n".join(f"{s} {p} {o} ." for s, p, o in triples)
             + "\n} }")
    b.bulk_insert(G2, triples)
    assert b.count(G1) == b.count(G2) == 12_000
    assert len(list(b.read_triples(G2))) == 12_000  # two pages
    assert len(b.contains(triples[:700] + [(ALICE, NAME, '"nobody"')], G1)) == 700


# -- the knowledge store over each backend --------------------------------------------------
def store_settings(request: pytest.FixtureRequest, kind: str, **store: object):  # noqa: ANN201
    over: dict[str, object] = dict(store)
    if kind == "virtuoso":
        server = request.getfixturevalue("virtuoso_clean")
        over.update(backend="sparql", query_endpoint=server.query_endpoint,
                    update_endpoint=server.update_endpoint)
    return load_settings(None, overrides={"store": over}, env={})


@pytest.fixture(params=BACKENDS)
def kstore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KnowledgeStore]:
    store = KnowledgeStore.open(tmp_path / "store", store_settings(request, request.param), create=True)
    yield store
    store.close()


def copy_sample(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(SAMPLE / name, target)
    return target


def ent(vocab: Vocabulary, name: str) -> str:
    return f"<{vocab.entity(name)}>"


def test_import_reimport_modify_remove(kstore: KnowledgeStore, tmp_path: Path) -> None:
    vocab, b = kstore.vocab, kstore.backend
    films = copy_sample(tmp_path, "films.txt")
    first = kstore.import_file(films)
    assert first.action == "added" and first.triples > 0
    assert b.count(first.graph) == first.triples
    assert kstore.import_file(films).action == "unchanged"

    directed = f"<{vocab.relation('directed_by')}>"
    old = (ent(vocab, "Forrest Gump"), directed, ent(vocab, "Robert Zemeckis"))
    new = (ent(vocab, "Some New Film"), directed, ent(vocab, "Someone New"))
    assert b.contains([old]) == {old}
    text = films.read_text().replace("Forrest Gump|directed_by|Robert Zemeckis\n", "")
    films.write_text(text + "Some New Film|directed_by|Someone New\n")
    second = kstore.import_file(films)
    assert second.action == "replaced" and second.graph != first.graph
    assert first.graph not in b.graph_names() and second.graph in b.graph_names()
    assert b.contains([old, new]) == {new}
    prov = str(vocab.provenance_graph)
    ask = "ASK {{ GRAPH <{}> {{ <{}> ?p ?o }} }}"
    assert not kstore.query(ask.format(prov, first.graph)).boolean
    assert kstore.query(ask.format(prov, second.graph)).boolean

    gone = kstore.remove_source(second.source_id)
    assert gone.action == "removed"
    assert second.graph not in b.graph_names()
    assert b.contains([new]) == set()
    assert not kstore.query(ask.format(prov, second.graph)).boolean
    assert not kstore.query(ask.format(prov, films.resolve().as_uri())).boolean
    assert kstore.sources() == []


@pytest.mark.parametrize("kind", BACKENDS)
def test_big_sources_take_the_bulk_path(request: pytest.FixtureRequest, kind: str,
                                        tmp_path: Path) -> None:
    ttl = tmp_path / "anon.ttl"
    ttl.write_text('@prefix ex: <http://example.org/> .\n'
                   'ex:alice ex:knows [ ex:name "Anon" ; ex:knows [ ex:name "Deeper" ] ] .\n')
    ask = ('PREFIX ex: <http://example.org/> SELECT ?n WHERE { ex:alice ex:knows/ex:knows/ex:name ?n }')
    settings = store_settings(request, kind, bulk_threshold=0)
    with KnowledgeStore.open(tmp_path / "store", settings, create=True) as store:
        first = store.import_file(ttl)
        assert store.backend.count(first.graph) == 4
        assert [str(r[0]) for r in store.query(ask)] == ["Deeper"]
        ttl.write_text(ttl.read_text().replace("Deeper", "Deepest"))
        second = store.import_file(ttl)
        assert second.action == "replaced" and store.backend.count(second.graph) == 4
        assert first.graph not in store.backend.graph_names()
        assert [str(r[0]) for r in store.query(ask)] == ["Deepest"]


def test_status_counts_only_kgchat_graphs(kstore: KnowledgeStore, tmp_path: Path) -> None:
    report = kstore.import_file(copy_sample(tmp_path, "films.txt"))
    label, rdf_type = f"<{RDFS.label}>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
    entities = set()
    for s, p, o, _ in kstore.backend.read_triples(report.graph):
        entities |= {s} if p != label else set()
        entities |= {o} if not o.startswith('"') and p != rdf_type else set()
    status = kstore.status()
    assert status.triples == status.asserted + status.provenance
    assert status.asserted == report.triples
    assert status.entities == len(entities)


def reasoned_store(request: pytest.FixtureRequest, kind: str, root: Path) -> tuple[KnowledgeStore, set, set]:
    """Import films + schema, reason fully; then change films and let the delta run."""
    root.mkdir(parents=True, exist_ok=True)
    store = KnowledgeStore.open(root / "store", store_settings(request, kind), create=True)
    films = root / "films.txt"
    shutil.copy(SAMPLE / "films.txt", films)
    store.import_files([films, SAMPLE / "schema.ttl", SAMPLE / "people.ttl"])
    store.reason()
    inferred = str(store.vocab.inferred_graph)
    full = {t[:3] for t in store.backend.read_triples(inferred)}
    films.write_text(films.read_text().replace("Forrest Gump|starred_actors|Tom Hanks\n", "")
                     + "Cast Away|starred_actors|Tom Hanks\nNew Film|directed_by|New Person\n")
    report = store.import_file(films)
    assert report.inferred is not None
    delta = {t[:3] for t in store.backend.read_triples(inferred)}
    return store, full, delta


@pytest.mark.parametrize("kind", BACKENDS)
def test_reason_full_and_incremental(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> None:
    store, full, delta = reasoned_store(request, kind, tmp_path)
    try:
        vocab = store.vocab
        rdf_type = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
        actor = "<https://w3id.org/kgchat/sample/film#Actor>"
        assert (ent(vocab, "Tom Hanks"), rdf_type, actor) in full
        assert (ent(vocab, "New Person"), rdf_type, "<https://w3id.org/kgchat/sample/film#Director>") in delta
        # The incremental update ends where a full recomputation does.
        store.reason()
        assert {t[:3] for t in store.backend.read_triples(str(vocab.inferred_graph))} == delta
    finally:
        store.close()


@pytest.mark.server
def test_reason_same_inferences_on_both_backends(request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    ox_store, ox_full, ox_delta = reasoned_store(request, "oxigraph", tmp_path / "ox")
    vt_store, vt_full, vt_delta = reasoned_store(request, "virtuoso", tmp_path / "vt")
    try:
        assert vt_full == ox_full and len(ox_full) > 0
        assert vt_delta == ox_delta
        label = f"<{RDFS.label}>"
        assert {t for t in vt_full if t[1] == label} == {t for t in ox_full if t[1] == label}
    finally:
        ox_store.close()
        vt_store.close()
