"""The command line end to end, on a real embedded store."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import rdflib

from chatbot.cli import main

QUERY = "SELECT ?d WHERE { kg:Forrest_Gump kgr:directed_by ?d }"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store_dir(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(__import__("os").environ):
        if name.startswith("KGCHAT_"):
            monkeypatch.delenv(name)
    d = str(tmp_path / "store")
    code, out, err = run(capsys, "--store", d, "init")
    assert code == 0, err
    code, out, err = run(capsys, "--store", d, "import", str(sample_dir / "films.txt"),
                         str(sample_dir / "schema.ttl"))
    assert code == 0, err
    return d


def test_import_prints_summary_and_reimport_is_noop(store_dir: str, sample_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--store", store_dir, "import", str(sample_dir / "films.txt"))
    assert code == 0 and "unchanged" in out


def test_import_a_folder(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", str(tmp_path / "s"), "import", "--create", str(sample_dir))
    assert code == 0, err
    assert out.count("added") == 3


def test_sparql_json_follows_w3c(store_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--store", store_dir, "sparql", QUERY, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["head"]["vars"] == ["d"]
    assert data["results"]["bindings"] == [
        {"d": {"type": "uri", "value": "https://w3id.org/kgchat/entity/Robert_Zemeckis"}}]
    code, out, _ = run(capsys, "--store", store_dir, "sparql", "ASK { ?s ?p ?o }", "-f", "json")
    assert json.loads(out) == {"head": {}, "boolean": True}


def test_sparql_csv_tsv_and_table(store_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    q = 'SELECT ?film ?year WHERE { ?f kgr:release_year ?y ; rdfs:label ?film . ?y rdfs:label ?year } ORDER BY ?film LIMIT 2'
    code, out, _ = run(capsys, "--store", store_dir, "sparql", q, "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["film", "year"] and rows[1] == ["Back to the Future", "1985"]
    assert out.splitlines(keepends=True)[0].endswith("\r\n")
    code, out, _ = run(capsys, "--store", store_dir, "sparql", q, "-f", "tsv")
    lines = out.splitlines()
    assert lines[0] == "?film\t?year" and lines[1] == '"Back to the Future"\t"1985"'
    code, out, _ = run(capsys, "--store", store_dir, "sparql", QUERY)
    assert "kg:Robert_Zemeckis" in out and "1 row" in out


def test_sparql_from_file_and_construct(store_dir: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    qf = tmp_path / "q.rq"
    qf.write_text("CONSTRUCT { ?f kgr:directed_by ?d } WHERE { ?f kgr:directed_by ?d }")
    code, out, _ = run(capsys, "--store", store_dir, "sparql", str(qf), "-f", "turtle")
    assert code == 0
    g = rdflib.Graph().parse(data=out, format="turtle")
    assert len(g) == 16


def test_long_query_on_one_line(store_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT ?d WHERE { kg:Forrest_Gump kgr:directed_by ?d " + " " * 300 + "}"
    code, out, _ = run(capsys, "--store", store_dir, "sparql", query, "-f", "csv")
    assert code == 0 and "Robert_Zemeckis" in out


def test_sparql_refusals(store_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--store", store_dir, "sparql", "DELETE WHERE { ?s ?p ?o }")
    assert code == 1 and "--update" in err
    code, _, err = run(capsys, "--store", store_dir, "sparql",
                       "SELECT * { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }")
    assert code == 1 and "--allow-service" in err
    code, _, err = run(capsys, "--store", store_dir, "sparql", "SELEC nonsense")
    assert code == 1 and "error" in err


def test_update_then_query(store_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--store", store_dir, "sparql", "--update",
                       "INSERT DATA { kg:Forrest_Gump kgr:has_tags kg:classic }")
    assert code == 0 and "update applied" in out
    code, out, _ = run(capsys, "--store", store_dir, "sparql", "ASK { kg:Forrest_Gump kgr:has_tags kg:classic }", "-f", "json")
    assert json.loads(out)["boolean"] is True


def test_reason_status_sources_export(store_dir: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--store", store_dir, "reason")
    assert code == 0 and "inferred triples" in out and out.startswith("full")
    code, out, _ = run(capsys, "--store", store_dir, "reason", "--incremental")
    assert code == 0 and out.startswith("incremental: +0 -0")
    code, out, _ = run(capsys, "--store", store_dir, "status", "--json")
    status = json.loads(out)
    assert status["sources"] == 2 and status["inferred"] > 0
    code, out, _ = run(capsys, "--store", store_dir, "sources", "list", "--json")
    sources = json.loads(out)
    films = next(s for s in sources if s["uri"].endswith("films.txt"))
    code, out, _ = run(capsys, "--store", store_dir, "sources", "show", films["id"][:8])
    assert code == 0 and "contentHash" in out and films["graph"] in out.replace("\n", "")
    target = tmp_path / "films.ttl"
    code, _, _ = run(capsys, "--store", store_dir, "export", "-f", "turtle", "-g", films["id"], "-o", str(target))
    assert len(rdflib.Graph().parse(target, format="turtle")) == films["triple_count"]
    code, out, _ = run(capsys, "--store", store_dir, "sources", "remove", films["id"])
    assert code == 0 and "removed" in out
    code, out, _ = run(capsys, "--store", store_dir, "sparql", "ASK { ?f kgr:directed ?d }", "-f", "json")
    assert json.loads(out)["boolean"] is False  # inferences went with the source


def test_missing_store_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--store", str(tmp_path / "none"), "status")
    assert code == 1 and "init" in err


def test_bad_file_exit_code_and_others_go_on(store_dir: str, fixtures_dir: Path, sample_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", store_dir, "import", str(fixtures_dir / "broken.txt"),
                         str(sample_dir / "people.ttl"))
    assert code == 1
    assert "broken.txt:2" in err and "added" in out


def test_console_script_help() -> None:
    exe = Path(sys.executable).parent / "kgchat"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("import", "sparql", "export", "reason", "status", "sources", "demo"):
        assert command in out


def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store", str(tmp_path / "demo"), "demo")
    assert code == 0, err
    assert "Robert Zemeckis" in out and "Steven Spielberg" in out and "inferred" in out
