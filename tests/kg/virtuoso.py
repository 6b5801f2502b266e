"""A real Virtuoso for the ``server`` tests: started once per session, on loopback only.

``virtuoso_endpoint`` writes a minimal virtuoso.ini into a fresh temporary directory
(database files there, SQL and HTTP ports picked free at run time, 127.0.0.1 only),
starts ``virtuoso-t +foreground``, waits for ``/sparql`` to answer, lets the anonymous
``SPARQL`` user run updates (``isql-vt``), and on teardown shuts the server down and
removes the directory. ``virtuoso_clean`` drops the test graphs before each test.
Import both fixtures into a test module (or a conftest) to use them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import free_port

# Graphs the tests write; everything else (Virtuoso's own graphs) is left alone.
TEST_GRAPH_PREFIXES = ("https://w3id.org/kgchat/", "http://example.org/", "urn:test:")
START_TIMEOUT = 60.0

_INI = """\
[Database]
DatabaseFile = {dir}/virtuoso.db
ErrorLogFile = {dir}/virtuoso.log
LockFile = {dir}/virtuoso.lck
TransactionFile = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {dir}/virtuoso-temp.db
TransactionFile = {dir}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
DisableTcpSocket = 0
MaxClientConnections = 10
CheckpointInterval = 60
O_DIRECT = 0
CaseMode = 2
MaxStaticCursorRows = 5000
CheckpointAuditTrail = 0
AllowOSCalls = 0
SchedulerInterval = 10
DirsAllowed = ., {dir}
ThreadCleanupInterval = 0
ThreadThreshold = 10
ResourcesCleanupInterval = 0
FreeTextBatchSize = 100000
SingleCPU = 0
PrefixResultNames = 0
RdfFreeTextRulesSize = 100
IndexTreeMaps = 64
MaxQueryMem = 512M
VectorSize = 1000
MaxVectorSize = 1000000
AdjustVectorSize = 0
ThreadsPerQuery = 2
AsyncQueueMaxThreads = 10
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {dir}
MaxClientConnections = 10
DavRoot = DAV
EnabledDavVSP = 0
HTTPProxyEnabled = 0
ServerThreads = 10
MaxKeepAlives = 10
KeepAliveTimeout = 10
HTTPThreadSize = 280000
Charset = UTF-8
EnabledGzipContent = 0

[Client]
SQL_PREFETCH_ROWS = 100
SQL_PREFETCH_BYTES = 16000
SQL_QUERY_TIMEOUT = 0
SQL_TXN_TIMEOUT = 0

[URIQA]
DynamicLocal = 0
DefaultHost = 127.0.0.1:{http_port}

[SPARQL]
ResultSetMaxRows = 1000000
MaxQueryCostEstimationTime = 400
MaxQueryExecutionTime = 120
DeferInferenceRulesInit = 0
"""

# What the anonymous /sparql user needs for INSERT DATA, DELETE DATA/WHERE and DROP.
_GRANTS = (
    'GRANT SPARQL_UPDATE TO "SPARQL";',
    'GRANT EXECUTE ON DB.DBA.SPARQL_INSERT_DICT_CONTENT TO "SPARQL";',
    'GRANT EXECUTE ON DB.DBA.SPARQL_DELETE_DICT_CONTENT TO "SPARQL";',
)


@dataclass(frozen=True)
class VirtuosoServer:
    query_endpoint: str   # anonymous /sparql, allowed to update
    update_endpoint: str
    auth_endpoint: str    # /sparql-auth, HTTP digest as dba/dba
    sql_port: int
    directory: Path


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}?query={urllib.parse.quote('ASK {}')}", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _log_tail(directory: Path, lines: int = 40) -> str:
    text = ""
    for name in ("virtuoso.log", "stdout.log"):
        path = directory / name
        if path.exists():
            text += f"--- {name}\n" + "\n".join(
                path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    return text


def _isql(port: int, statements: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["isql-vt", f"127.0.0.1:{port}", "dba", "dba", f"exec={statements}"],
                          capture_output=True, text=True, timeout=60)


def _stop(proc: subprocess.Popen[bytes], sql_port: int) -> None:
    if proc.poll() is None:
        try:  # a clean shutdown first; the database is thrown away anyway
            _isql(sql_port, "shutdown;")
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def virtuoso_endpoint() -> Iterator[VirtuosoServer]:
    for tool in ("virtuoso-t", "isql-vt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH; install the Debian package "
                        f"virtuoso-opensource to run the server tests")
    directory = Path(tempfile.mkdtemp(prefix="kgchat-virtuoso-"))
    sql_port, http_port = free_port(), free_port()
    ini = directory / "virtuoso.ini"
    ini.write_text(_INI.format(dir=directory, sql_port=sql_port, http_port=http_port))
    base = f"http://127.0.0.1:{http_port}"
    with open(directory / "stdout.log", "wb") as log:
        proc = subprocess.Popen(["virtuoso-t", "+foreground", "+configfile", str(ini)],
                                cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(f"{base}/sparql"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Virtuoso did not come up on {base} within {START_TIMEOUT:g} s "
                            f"(exit code {proc.poll()}):\n{_log_tail(directory)}")
            time.sleep(0.3)
        granted = _isql(sql_port, " ".join(_GRANTS))
        if granted.returncode != 0 or "Error" in granted.stdout + granted.stderr:
            pytest.fail(f"granting SPARQL update rights failed:\n{granted.stdout}\n{granted.stderr}")
        yield VirtuosoServer(f"{base}/sparql", f"{base}/sparql", f"{base}/sparql-auth",
                             sql_port, directory)
    finally:
        _stop(proc, sql_port)
        shutil.rmtree(directory, ignore_errors=True)


def drop_test_graphs(endpoint: str) -> None:
    """Drop every graph under :data:`TEST_GRAPH_PREFIXES` at ``endpoint``."""
    def post(field: str, text: str) -> bytes:
        data = urllib.parse.urlencode({field: text}).encode()
        req = urllib.request.Request(endpoint, data=data, method="POST",
                                     headers={"Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.read()

    rows = json.loads(post("query", "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"))
    graphs = [b["g"]["value"] for b in rows["results"]["bindings"]]
    drops = [f"DROP SILENT GRAPH <{g}>" for g in graphs if g.startswith(TEST_GRAPH_PREFIXES)]
    if drops:
        post("update", " ;\n".join(drops))


@pytest.fixture
def virtuoso_clean(virtuoso_endpoint: VirtuosoServer) -> VirtuosoServer:
    """The session's server, with no test graphs left from earlier tests."""
    drop_test_graphs(virtuoso_endpoint.query_endpoint)
    return virtuoso_endpoint
