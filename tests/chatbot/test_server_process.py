"""The service's readers-writer lock, and ``kgchat serve`` as a real process on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from chatbot.server import RWLock
from kg.store import KnowledgeStore
from tests.conftest import ROOT, SAMPLE, free_port, make_settings


def test_readers_share_and_a_writer_waits_for_them() -> None:
    lock, events = RWLock(), []
    both_in = threading.Barrier(3, timeout=5)

    def reader() -> None:
        with lock.read():
            both_in.wait()   # two readers inside at once
            time.sleep(0.1)
            events.append("read done")

    def writer() -> None:
        with lock.write():
            events.append("write")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    both_in.wait()
    w = threading.Thread(target=writer)
    w.start()
    for t in [*readers, w]:
        t.join(5)
    assert events == ["read done", "read done", "write"]


def test_a_waiting_writer_holds_new_readers_back() -> None:
    lock, events = RWLock(), []
    first_in, release = threading.Event(), threading.Event()

    def long_reader() -> None:
        with lock.read():
            first_in.set()
            release.wait(5)

    def writer() -> None:
        with lock.write():
            events.append("write")

    def late_reader() -> None:
        with lock.read():
            events.append("late read")

    threads = [threading.Thread(target=long_reader)]
    threads[0].start()
    first_in.wait(5)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    while not lock._waiting:  # the writer is queued
        time.sleep(0.01)
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    time.sleep(0.1)
    assert events == []
    release.set()
    for t in threads:
        t.join(5)
    assert events == ["write", "late read"]


def test_the_writer_may_reenter_and_read_but_a_reader_cannot_upgrade() -> None:
    lock = RWLock()
    with lock.write():
        with lock.write(), lock.read():  # reload() inside a refresh's write_lock
            assert lock.held()
    assert not lock.writing and not lock.held()
    with lock.read(), pytest.raises(RuntimeError), lock.write():
        pass
    with lock.write():  # and the lock is free again
        pass


def start_serve(store: Path, token: str | None = None, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """``kgchat --store STORE serve`` on a free port, waited for until /healthz answers;
    returns the process and its base URL. Stop it with :func:`stop_serve`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGCHAT_")}
    if token:
        env["KGCHAT_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatbot", "--store", str(store), "serve", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not come up in {timeout:.0f} s"
            time.sleep(0.3)
    except BaseException:
        stop_serve(proc)
        raise


def stop_serve(proc: subprocess.Popen) -> str:
    """Ctrl-C, as a user stops it (killed after 30 s); returns what it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


@pytest.mark.slow
def test_kgchat_serve_runs_as_a_process(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with KnowledgeStore.open(store, make_settings(reason={"auto": False}), create=True) as kg:
        kg.import_file(SAMPLE / "films.txt")
    proc, base = start_serve(store, token="process-token")
    try:
        health = httpx.get(f"{base}/healthz").json()
        assert health["read_only"] is False  # the token came from $KGCHAT_TOKEN
        r = httpx.get(f"{base}/sparql", params={"query": "SELECT ?d WHERE { kg:Forrest_Gump kgr:directed_by ?d }"})
        assert r.status_code == 200
        assert r.json()["results"]["bindings"][0]["d"]["value"].endswith("Robert_Zemeckis")
        r = httpx.post(f"{base}/chat", json={"session_id": "p", "message": "Who directed Forrest Gump?"}, timeout=30)
        assert r.json()["answer"]["entities"] == ["Robert Zemeckis"]
    finally:
        out = stop_serve(proc)
    assert proc.returncode == 0, out
    assert "kgchat serving" in out
    # it closed the store on the way out: this process can open it again
    with KnowledgeStore.open(store, make_settings(reason={"auto": False})) as kg:
        assert kg.query("ASK { ?s ?p ?o }").boolean
