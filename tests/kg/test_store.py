"""The embedded store: sources, versions, provenance, crash recovery, queries, export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import rdflib

from kg.errors import QueryError, QueryForbiddenError, QueryTimeoutError, SourceError, StoreNotFoundError
from kg.store import KnowledgeStore
from tests.conftest import make_settings


def _count_data(kg: KnowledgeStore) -> int:
    return sum(1 for *_t, g in kg.backend.read_triples() if not kg.vocab.is_system_graph(g))


def test_missing_store_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="init"):
        KnowledgeStore.open(tmp_path / "nope", make_settings())


def test_import_records_source_graph_and_provenance(store: KnowledgeStore, sample_dir: Path) -> None:
    report = store.import_file(sample_dir / "films.txt")
    assert report.action == "added" and report.triples > 150
    [record] = store.sources()
    assert record.graph == report.graph and record.graph in store.backend.graph_names()
    assert store.backend.count(record.graph) == report.triples
    res = store.query(f"""SELECT ?src ?hash ?when WHERE {{ GRAPH kgg:provenance {{
        <{record.graph}> prov:wasDerivedFrom ?src ; kgv:contentHash ?hash ; prov:generatedAtTime ?when }} }}""")
    assert res is not None and len(res.rows) == 1
    src, digest, when = res.rows[0]
    assert str(src) == (sample_dir / "films.txt").resolve().as_uri()
    assert str(digest) == record.content_hash
    assert when.datatype == rdflib.XSD.dateTime


def test_reimport_unchanged_is_a_noop(store: KnowledgeStore, sample_dir: Path) -> None:
    first = store.import_file(sample_dir / "films.txt")
    again = store.import_file(sample_dir / "films.txt")
    assert again.action == "unchanged" and again.graph == first.graph
    assert len(store.sources()) == 1


def test_changed_file_replaces_its_graph(store: KnowledgeStore, tmp_path: Path) -> None:
    f = tmp_path / "kb.txt"
    f.write_text("Alpha|likes|Beta\nBeta|likes|Gamma\n", encoding="utf-8")
    old = store.import_file(f)
    f.write_text("Alpha|likes|Delta\n", encoding="utf-8")
    new = store.import_file(f)
    assert new.action == "replaced" and new.graph != old.graph
    assert old.graph not in store.backend.graph_names()
    assert store.query("ASK { kg:Alpha kgr:likes kg:Beta }").boolean is False
    assert store.query("ASK { kg:Alpha kgr:likes kg:Delta }").boolean is True
    prov = store.query(f"ASK {{ GRAPH kgg:provenance {{ <{old.graph}> ?p ?o }} }}")
    assert prov.boolean is False  # the old version's provenance went with it


def test_failed_import_touches_nothing(store: KnowledgeStore, sample_dir: Path, fixtures_dir: Path) -> None:
    store.import_file(sample_dir / "films.txt")
    before = (store.backend.count(), [r.version for r in store.sources()])
    reports = store.import_files([fixtures_dir / "broken.ttl", sample_dir / "people.ttl"])
    assert [r.action for r in reports] == ["failed", "added"]
    assert "broken.ttl" in reports[0].error and "line" in reports[0].error
    assert len(store.sources()) == 2 and store.backend.count() > before[0]


def test_remove_source(store: KnowledgeStore, sample_dir: Path) -> None:
    films = store.import_file(sample_dir / "films.txt")
    store.import_file(sample_dir / "people.ttl")
    report = store.remove_source(films.source_id)
    assert report.action == "removed"
    assert films.graph not in store.backend.graph_names()
    assert store.query("ASK { ?f kgr:directed_by ?d }").boolean is False
    assert store.query("ASK { kg:Tom_Hanks kgr:born_in kg:Concord }").boolean is True
    assert store.query(f"ASK {{ GRAPH kgg:provenance {{ <{films.graph}> ?p ?o }} }}").boolean is False
    with pytest.raises(Exception, match="no source"):
        store.remove_source(films.source_id)


@pytest.mark.parametrize("bulk_threshold", [0, 10_000])
def test_crash_before_commit_rolls_back(tmp_path: Path, bulk_threshold: int) -> None:
    """Kill the write after the new graph is stored but before provenance is swapped."""
    settings = make_settings(store={"bulk_threshold": bulk_threshold})
    f = tmp_path / "kb.txt"
    f.write_text("Alpha|likes|Beta\n", encoding="utf-8")
    kg = KnowledgeStore.open(tmp_path / "s", settings, create=True)
    kg.import_file(f)
    before = sorted(kg.backend.read_triples())
    f.write_text("Alpha|likes|Gamma\n", encoding="utf-8")

    class Crash(BaseException):
        pass

    real_update = kg.backend.update

    def crash_at_swap(sparql: str) -> None:
        # Bulk path: the new graph is already on disk. Transactional path: nothing is.
        if "DROP SILENT GRAPH" in sparql:
            raise Crash()
        real_update(sparql)

    kg.backend.update = crash_at_swap  # type: ignore[method-assign]
    kg.backend.drop_graph = lambda g: None  # type: ignore[method-assign]  # the process dies: no cleanup
    kg.state.abort_write = lambda jid: None  # type: ignore[method-assign]
    with pytest.raises(Crash):
        kg.import_file(f)
    kg.backend.close()
    kg.state.close()
    with KnowledgeStore.open(tmp_path / "s", settings) as again:
        assert sorted(again.backend.read_triples()) == before
        assert again.state.pending_writes() == []
        assert again.query("ASK { kg:Alpha kgr:likes kg:Beta }").boolean is True
        assert again.state.recent_changes(1)[0].action == "rolled-back"


def test_crash_after_swap_rolls_forward(tmp_path: Path) -> None:
    settings = make_settings()
    f = tmp_path / "kb.txt"
    f.write_text("Alpha|likes|Beta\n", encoding="utf-8")
    kg = KnowledgeStore.open(tmp_path / "s", settings, create=True)
    kg.state.commit_write = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())  # type: ignore
    kg.state.abort_write = lambda jid: None  # type: ignore[method-assign]
    kg.backend.drop_graph = lambda g: None  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        kg.import_file(f)
    kg.backend.close()
    kg.state.close()
    with KnowledgeStore.open(tmp_path / "s", settings) as again:
        [record] = again.sources()
        assert record.graph in again.backend.graph_names()
        assert again.import_file(f).action == "unchanged"


def test_bulk_and_transactional_paths_store_the_same(tmp_path: Path, sample_dir: Path) -> None:
    dumps = []
    for threshold in (0, 1_000_000):
        with KnowledgeStore.open(tmp_path / f"s{threshold}", make_settings(store={"bulk_threshold": threshold}),
                                 create=True) as kg:
            kg.import_file(sample_dir / "films.txt")
            dumps.append(sorted((s, p, o) for s, p, o, g in kg.backend.read_triples()
                                if not kg.vocab.is_system_graph(g)))
    assert dumps[0] == dumps[1]


def test_query_policy(store: KnowledgeStore, sample_dir: Path) -> None:
    store.import_file(sample_dir / "films.txt")
    with pytest.raises(QueryForbiddenError, match="--update"):
        store.query("INSERT DATA { kg:x kgr:y kg:z }")
    with pytest.raises(QueryForbiddenError, match="--allow-service"):
        store.query("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }")
    with pytest.raises(QueryError):
        store.query("SELECT * WHERE { ?s ?p }")
    assert store.query("INSERT DATA { kg:x kgr:y kg:z }", allow_update=True) is None
    assert store.query("ASK { kg:x kgr:y kg:z }").boolean is True


def test_query_timeout(store: KnowledgeStore, sample_dir: Path) -> None:
    store.import_file(sample_dir / "films.txt")
    # A cartesian product of ~10M rows: a few seconds of work, abandoned after 0.05 s.
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    with pytest.raises(QueryTimeoutError, match="--timeout"):
        store.query(slow, timeout=0.05)


def test_streaming_query_stops_at_the_deadline(store: KnowledgeStore, sample_dir: Path) -> None:
    import threading

    store.import_file(sample_dir / "films.txt")
    before = set(threading.enumerate())
    with pytest.raises(QueryTimeoutError):
        store.query("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", timeout=0.2)
    # evaluated in this thread, row by row: no worker is left computing after the error
    assert not [t for t in set(threading.enumerate()) - before if t.name == "kgchat-query"]


def test_union_includes_inferences_and_max_rows(store: KnowledgeStore, sample_dir: Path) -> None:
    for name in ("films.txt", "schema.ttl"):
        store.import_file(sample_dir / name)
    store.reason()
    res = store.query("SELECT ?f WHERE { kg:Steven_Spielberg kgr:directed ?f }")
    assert len(res.rows) == 5  # only inferred (owl:inverseOf)
    capped = store.query("SELECT ?s WHERE { ?s ?p ?o }", max_rows=3)
    assert len(capped.rows) == 3 and capped.truncated


def test_export_dataset_and_one_graph(store: KnowledgeStore, sample_dir: Path) -> None:
    films = store.import_file(sample_dir / "films.txt")
    buf = io.BytesIO()
    store.export(buf, "nquads")
    ds = rdflib.Dataset()
    ds.parse(data=buf.getvalue().decode(), format="nquads")
    assert sum(len(g) for g in ds.graphs() if str(g.identifier) == films.graph) == films.triples
    one = io.BytesIO()
    store.export(one, "turtle", films.graph)
    g = rdflib.Graph().parse(data=one.getvalue().decode(), format="turtle")
    assert len(g) == films.triples
    with pytest.raises(QueryError, match="nquads"):
        store.export(io.BytesIO(), "turtle")


def test_status_counts(store: KnowledgeStore, sample_dir: Path) -> None:
    for name in ("films.txt", "schema.ttl", "people.ttl"):
        store.import_file(sample_dir / name)
    store.reason()
    st = store.status()
    assert st.sources == 3 and st.named_graphs == 5
    assert st.inferred > 0 and st.provenance > 0
    assert st.asserted == _count_data(store)
    assert st.triples == st.asserted + st.inferred + st.provenance
    assert 90 < st.entities < 140
    assert st.reasoned_at is not None
    assert [c.action for c in st.last_changes][:1] == ["reasoned"]
    assert st.last_runs[0]["kind"] == "reason" and st.last_runs[0]["status"] == "ok"


def test_import_runs_are_recorded(store: KnowledgeStore, sample_dir: Path, fixtures_dir: Path) -> None:
    store.import_files([sample_dir / "films.txt", fixtures_dir / "broken.ttl"])
    store.import_files([sample_dir / "films.txt"])
    latest, first = store.state.recent_runs(2)
    assert first["status"] == "failed" and first["summary"]["added"] == 1 and first["summary"]["failed"] == 1
    assert latest["status"] == "ok" and latest["summary"] == {"unchanged": 1, "triples": 0}
    assert latest["finished_at"] >= latest["started_at"]


def test_source_error_for_directory(store: KnowledgeStore, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a regular file"):
        store.import_file(tmp_path)
