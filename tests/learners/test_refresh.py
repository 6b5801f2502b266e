"""`refresh`: watched sources into the graph and out again, on a real store with the real
ingest pipeline; the refresh lock across processes; the scheduler across restarts (with a
stub in place of refresh); the command line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kg.errors import BusyError
from kg.state import StateDB
from kg.store import KnowledgeStore
from kg.watch import new_watch, parse_schedule
from learners.lock import lock_holder, refresh_lock
from learners.refresh import RefreshOptions, RefreshReport, refresh
from learners.schedule import RefreshScheduler
from learners.train import TrainPlan
from tests.conftest import ROOT, make_settings
from tests.webserver import Page, Site, site  # noqa: F401 (site is a fixture)

DOCS = {
    "hanks.txt": "Tom Hanks was born in Concord. He starred in Forrest Gump.",
    "jaws.md": "# Jaws\n\nSteven Spielberg directed Jaws. Jaws was released in 1975.\n",
}


@pytest.fixture
def kg(tmp_path: Path) -> Iterator[KnowledgeStore]:
    store = KnowledgeStore.open(tmp_path / "store", make_settings(extract={"n_process": 1}), create=True)
    yield store
    store.close()


def watch(store: KnowledgeStore, target: str | Path, every: str = "1h") -> str:
    w = new_watch(str(target), parse_schedule(every=every))
    store.state.put_watch(w)
    return w.id


def ask(store: KnowledgeStore, query: str) -> bool:
    res = store.query(query)
    return bool(res is not None and res.boolean)


def by_name(report: RefreshReport) -> dict[str, str]:
    return {Path(c.name).name if not c.name.startswith("http") else c.name: c.action for c in report.changes}


NO_TRAIN = RefreshOptions(train=False)


# -- the pass -------------------------------------------------------------------------------

def test_folder_refresh_adds_updates_retracts(kg: KnowledgeStore, tmp_path: Path, site: Site) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    folder = watch(kg, docs)
    site.pages["/gone.txt"] = Page(b"x")
    broken = watch(kg, site.url("/missing.txt"))
    writes: list[str] = []

    @contextlib.contextmanager
    def write_lock() -> Iterator[None]:
        writes.append("locked")
        yield
        writes.append("released")

    report = refresh(kg, NO_TRAIN, write_lock=write_lock, after_write=lambda: writes.append("after"))
    assert by_name(report) == {"hanks.txt": "added", "jaws.md": "added", site.url("/missing.txt"): "failed"}
    assert writes == ["locked", "released", "after"]  # the lock only around writing; after_write once
    assert report.status == "partial" and report.triples_added > 0 and report.graph_changed
    assert report.reasoning is not None and report.reasoning["inferred"] >= 0
    assert report.training_skipped.startswith("not asked")
    assert ask(kg, 'ASK { ?e rdfs:label "Jaws" }')
    (failed,) = report.of("failed")
    assert failed.watch == broken and "HTTP 404" in failed.error
    run = kg.state.recent_runs(10)
    assert any(r["kind"] == "refresh" and r["status"] == "partial" and r["summary"]["added"] == 2 for r in run)

    (docs / "hanks.txt").write_text("Tom Hanks was born in Concord. He starred in Cast Away.")
    (docs / "jaws.md").unlink()
    (docs / "empty.md").write_text("")
    (docs / "new.txt").write_text("Robert Zemeckis was born in Chicago.")
    writes.clear()
    report = refresh(kg, RefreshOptions(train=False, watches=(folder,)))
    assert by_name(report) == {"hanks.txt": "updated", "jaws.md": "removed", "empty.md": "failed",
                               "new.txt": "added"}
    assert "empty.md" in report.of("failed")[0].error and report.triples_retracted > 0
    assert not ask(kg, 'ASK { ?e rdfs:label "Jaws" }')  # retracted with its document
    assert ask(kg, 'ASK { ?e rdfs:label "Robert Zemeckis" }')
    w = kg.state.find_watch(folder)
    assert w is not None and w.last_change_at == w.last_run_at and "empty.md" in (w.last_error or "")

    (docs / "empty.md").unlink()
    report = refresh(kg, RefreshOptions(train=False, watches=(folder,)), after_write=lambda: writes.append("after"))
    assert report.changes == [] and report.unchanged == 2 and report.status == "ok"
    assert writes == [] and not report.graph_changed  # nothing written: no after_write
    w = kg.state.find_watch(folder)
    assert w is not None and w.last_error is None and w.last_change_at != w.last_run_at


def test_url_refresh_uses_validators(kg: KnowledgeStore, site: Site) -> None:
    site.pages["/ada.txt"] = Page(b"Ada Lovelace was born in London.", etag='"a1"')
    wid = watch(kg, site.url("/ada.txt"))
    assert by_name(refresh(kg, NO_TRAIN)) == {site.url("/ada.txt"): "added"}
    assert kg.state.find_watch(wid).state["etag"] == '"a1"'  # type: ignore[union-attr]
    site.requests.clear()
    report = refresh(kg, NO_TRAIN)
    assert report.changes == [] and report.unchanged == 1
    assert site.requests == [("/ada.txt", '"a1"', None)]  # answered 304
    site.pages["/ada.txt"] = Page(b"Ada Lovelace was born in Marylebone.", etag='"a2"')
    assert by_name(refresh(kg, NO_TRAIN)) == {site.url("/ada.txt"): "updated"}
    assert ask(kg, 'ASK { ?e rdfs:label "Marylebone" }')


def test_cancelled_pass_is_recorded(kg: KnowledgeStore, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Tom Hanks was born in Concord.")
    watch(kg, tmp_path / "a.txt")
    stop = threading.Event()
    stop.set()
    report = refresh(kg, RefreshOptions(train=False, cancel=stop))
    assert report.status == "cancelled" and report.changes == []
    assert kg.state.recent_runs(1)[0]["status"] == "cancelled"


def test_learning_round_after_the_writes(kg: KnowledgeStore, sample_dir: Path) -> None:
    watch(kg, sample_dir / "people.ttl")
    kg.import_file(sample_dir / "films.txt")  # enough graph for QA pairs
    plan = TrainPlan(pairs=40, generator_steps=10, epochs=1.0, scorer_epochs=1)
    swapped: list[bool] = []
    report = refresh(kg, RefreshOptions(plan=plan), after_train=lambda: swapped.append(True))
    assert by_name(report) == {"people.ttl": "added"}
    assert swapped == ([True] if report.accepted else [])
    t = report.training
    assert t is not None and t["steps"] > 0 and t["reason"]
    assert report.accepted is (t["accepted"] is True)
    current = (kg.root / "models" / "generator" / "CURRENT")
    assert current.exists() == bool(report.accepted)  # swapped in only past the gate
    assert report.summary()["round"].startswith("accepted" if report.accepted else "rejected")


# -- the refresh lock -----------------------------------------------------------------------

HOLD = ("import sys, time; from pathlib import Path; from learners.lock import refresh_lock\n"
        "with refresh_lock(Path(sys.argv[1]), what='test holder'):\n"
        "    print('held', flush=True); time.sleep(60)\n")


def test_lock_across_processes_and_threads(kg: KnowledgeStore) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(kg.root)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert lock_holder(kg.root)["pid"] == holder.pid  # type: ignore[index]
        with pytest.raises(BusyError, match=f"pid {holder.pid}") as info:
            refresh(kg, RefreshOptions(train=False, lock_wait=0.3))
        assert info.value.pid == holder.pid and "test holder" in str(info.value)
    finally:
        holder.kill()
        holder.wait(10)
    assert lock_holder(kg.root) is None  # the kernel dropped it with the process
    with refresh_lock(kg.root):
        assert refresh(kg, NO_TRAIN).status == "ok"  # re-entrant in the holding thread
        failed: list[BaseException] = []
        t = threading.Thread(target=lambda: _try(lambda: refresh(kg, NO_TRAIN), failed))
        t.start()
        t.join(30)
        assert len(failed) == 1 and isinstance(failed[0], BusyError) and "another thread" in str(failed[0])


def _try(fn: Callable[[], Any], errors: list[BaseException]) -> None:
    try:
        fn()
    except BusyError as exc:
        errors.append(exc)


# -- the scheduler ---------------------------------------------------------------------------

class Calls:
    """A stand-in for refresh: records which watches each call was for, and overlaps."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.ids: list[str] = []
        self.seconds = seconds
        self.active = self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, ids: Sequence[str]) -> None:
        with self._lock:
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        time.sleep(self.seconds)
        with self._lock:
            self.active -= 1
            self.ids.extend(ids)


def wait_for(cond: Callable[[], bool], limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def rewind(store_dir: Path, job_id: str, by: timedelta) -> None:
    """Move a persisted job's next run into the past, as if the scheduler had been down
    (through the job store alone: a scheduler, even paused, might run the job)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    jobs = SQLAlchemyJobStore(url=f"sqlite:///{store_dir / 'schedule.db'}")
    jobs.start(None, "default")  # type: ignore[arg-type]
    job = jobs.lookup_job(job_id)
    assert job is not None
    job.next_run_time = datetime.now(UTC) - by
    jobs.update_job(job)
    jobs.shutdown()


def test_scheduler_restart_runs_a_missed_run_once(tmp_path: Path) -> None:
    with StateDB.open(tmp_path / "state.db") as state:
        (tmp_path / "a").mkdir()
        w = new_watch(str(tmp_path / "a"), parse_schedule(every="1h"))
        state.put_watch(w)
    first = Calls()
    with RefreshScheduler(tmp_path, first, sync_seconds=3600) as s:
        assert wait_for(lambda: first.ids == [w.id])  # never refreshed: due at once
        upcoming = s.next_runs()[w.id]
        assert timedelta(minutes=59) < upcoming - datetime.now(UTC) <= timedelta(hours=1)
    rewind(tmp_path, f"watch:{w.id}", timedelta(hours=2, minutes=30))  # two slots missed while down

    second = Calls()
    with RefreshScheduler(tmp_path, second, sync_seconds=3600) as s:
        assert wait_for(lambda: second.ids != [])
        time.sleep(1.0)
        assert second.ids == [w.id]  # coalesced: once, not zero, not twice
        # and the interval counts from that run: no slot of the old grid follows it closely
        assert s.next_runs()[w.id] - datetime.now(UTC) > timedelta(minutes=59)

    third = Calls()
    with RefreshScheduler(tmp_path, third, sync_seconds=3600):
        time.sleep(1.0)
    assert third.ids == []  # nothing was due


def test_scheduler_follows_the_watch_list_one_run_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    StateDB.open(tmp_path / "state.db").close()
    calls = Calls(seconds=0.3)
    with RefreshScheduler(tmp_path, calls, sync_seconds=3600) as s:
        assert s.next_runs() == {}
        with StateDB.open(tmp_path / "state.db") as state:
            ids = []
            for name in ("a", "b"):
                w = new_watch(str(tmp_path / name), parse_schedule(every="1h"))
                state.put_watch(w)
                ids.append(w.id)
        s.sync()
        assert wait_for(lambda: sorted(calls.ids) == sorted(ids))
        assert calls.most_at_once == 1
        with StateDB.open(tmp_path / "state.db") as state:
            state.delete_watch(ids[0])
            state.record_watch_run(ids[1], at=datetime.now(UTC).isoformat(), changed=False,
                                   error=None, state={})
            state.put_watch(new_watch(str(tmp_path / "b"), parse_schedule(cron="0 3 * * *")))
        s.sync()
        assert list(s.next_runs()) == [ids[1]]
        assert s.next_runs()[ids[1]].astimezone().strftime("%H:%M") == "03:00"


# -- the command line -------------------------------------------------------------------------

def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from tests.chatbot.test_cli import run

    code, out, err = run(capsys, *args)
    return code, " ".join(out.split()), " ".join(err.split())  # rich wraps at 80 columns


@pytest.fixture
def store_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("KGCHAT_"):
            monkeypatch.delenv(name)
    d = str(tmp_path / "store")
    assert run_cli(capsys, "--store", d, "init")[0] == 0
    return d


def test_cli_sources_add_list_refresh(store_dir: str, tmp_path: Path, sample_dir: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "people.ttl"
    kb.write_bytes((sample_dir / "people.ttl").read_bytes())
    code, out, err = run_cli(capsys, "--store", store_dir, "sources", "add", str(kb), "--every", "30m")
    assert code == 0 and "every 30m" in out, err
    code, out, err = run_cli(capsys, "--store", store_dir, "sources", "add", str(tmp_path / "nope"))
    assert code == 1 and "nope: no such file or folder" in err
    code, out, err = run_cli(capsys, "--store", store_dir, "sources", "add", str(kb), "--every", "soon")
    assert code == 1 and "'soon'" in err
    code, out, err = run_cli(capsys, "--store", store_dir, "sources", "add", str(kb), "--cron", "* * *")
    assert code == 1 and "5 fields" in err

    code, out, err = run_cli(capsys, "--store", store_dir, "refresh", "--no-train")
    assert code == 0, err
    assert "1 added" in out and "people.ttl" in out and "not asked" in out
    code, out, _ = run_cli(capsys, "--store", store_dir, "sources", "list")
    assert "watched sources" in out and "30m" in out and "turtle" in out
    kb.unlink()
    code, out, _ = run_cli(capsys, "--store", store_dir, "refresh", "--no-train")
    assert code == 0 and "1 removed" in out
    code, out, _ = run_cli(capsys, "--store", store_dir, "sources", "unwatch", "people")
    assert code == 0 and "stopped watching" in out
    code, out, _ = run_cli(capsys, "--store", store_dir, "sources", "watched")
    assert "no watched sources" in out


def test_cli_schedule_runs_and_stops_on_sigterm(store_dir: str, tmp_path: Path, sample_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "people.ttl"
    kb.write_bytes((sample_dir / "people.ttl").read_bytes())
    assert run_cli(capsys, "--store", store_dir, "sources", "add", str(kb))[0] == 0
    exe = Path(sys.executable).parent / "kgchat"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGCHAT_")}
    with KnowledgeStore.open(Path(store_dir), make_settings()):  # held open: schedule must refuse
        busy = subprocess.run([str(exe), "--store", store_dir, "schedule", "--no-train"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert busy.returncode == 1 and "cannot share" in busy.stderr

    proc = subprocess.Popen([str(exe), "--store", store_dir, "schedule", "--no-train", "--sync", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " ok in " in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "added 1" in log and "scheduler stopped" in log
    with StateDB.open(Path(store_dir) / "state.db") as state:
        assert any(r["kind"] == "refresh" and r["status"] == "ok" for r in state.recent_runs(5))
        (w,) = state.watches()
        assert w.last_run_at is not None
