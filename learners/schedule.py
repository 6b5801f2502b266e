"""Refreshes on schedule: one APScheduler job per watch, persisted in ``<store>/schedule.db``.

- The job store is SQLAlchemy on ``sqlite:///<store>/schedule.db``: a restart keeps every
  watch's next run time.
- ``coalesce=True`` and ``misfire_grace_time=None``: runs missed while no scheduler ran
  (stopped, machine asleep) happen once when it is back — not zero times, and not once
  per missed slot.
- ``max_instances=1`` and one worker thread: one refresh at a time in this process; the
  refresh lock (:mod:`learners.lock`), taken by every refresh, keeps other processes out.
- The watches table in state.db is the truth. :meth:`RefreshScheduler.sync` (at start and
  every ``sync_seconds``) adds a job for a new watch (due at once if it was never
  refreshed, else one period after its last run), re-times a job whose schedule changed,
  and drops the jobs of unwatched sources. A job whose schedule is unchanged is never
  touched: re-adding it would forget a run that is due.
- Each job refreshes its own watch; two watches due together are two passes in a row.

:class:`RefreshScheduler` calls any ``run(watch_ids)``: ``kgchat schedule`` passes one
that opens the store for the run and closes it after, so other commands can use the
store in between; a server passes one calling :func:`learners.refresh.refresh` on the
store it holds open (an Oxigraph store can be open in one process only).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kg.errors import KgchatError, ScheduleError, StoreError
from kg.state import StateDB
from kg.watch import parse_spec

log = logging.getLogger(__name__)

SCHEDULE_DB = "schedule.db"
STATE_FILE = "state.db"

# The job function must be a module-level name (the job store persists a reference to
# it), so it finds its scheduler here, by store directory.
_RUNNERS: dict[str, RefreshScheduler] = {}
_RUNNERS_LOCK = threading.Lock()


def _fire(key: str, watch_id: str) -> None:
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
    if runner is None:
        log.warning("no scheduler for %s in this process; refresh of %s skipped", key, watch_id)
        return
    runner._run_one(watch_id)


class RefreshScheduler:
    """Calls ``run([watch_id])`` in a background thread whenever a watch is due.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``log`` gets one
    line per scheduling event and run (default: the ``learners.schedule`` logger).
    """

    def __init__(self, store_dir: Path, run: Callable[[Sequence[str]], Any], *,
                 sync_seconds: float = 30.0, log_line: Callable[[str], None] | None = None) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.store_dir = Path(store_dir).resolve()
        if not (self.store_dir / STATE_FILE).exists():
            raise StoreError(f"no kgchat store at {self.store_dir}; create one with "
                             f"`kgchat --store {self.store_dir} init`")
        self._key = str(self.store_dir)
        self._run = run
        self._say = log_line or log.info
        self._sync_seconds = sync_seconds
        self.running = threading.Event()  # set while a refresh runs
        self._sched = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{self.store_dir / SCHEDULE_DB}"),
                       "internal": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(1), "sync": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        with _RUNNERS_LOCK:
            if self._key in _RUNNERS:
                raise StoreError(f"a scheduler for {self.store_dir} is already running in this process")
            _RUNNERS[self._key] = self
        try:
            # Paused until the jobs match the watches, so nothing stale fires first.
            self._sched.start(paused=True)
            self.sync()
            self._sched.add_job(self._sync_quietly, "interval", seconds=self._sync_seconds, id="sync",
                                jobstore="internal", executor="sync")
            self._sched.resume()
        except BaseException:
            self.stop(wait=False)
            raise

    def stop(self, wait: bool = True) -> None:
        """No new runs; with ``wait``, return once a running refresh has finished."""
        if self._sched.running:
            self._sched.shutdown(wait=wait)
        with _RUNNERS_LOCK:
            if _RUNNERS.get(self._key) is self:
                del _RUNNERS[self._key]

    def __enter__(self) -> RefreshScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- jobs ---------------------------------------------------------------------------
    def sync(self) -> None:
        """Make the jobs match the watches table (see the module notes)."""
        with StateDB.open(self.store_dir / STATE_FILE) as state:
            watches = state.watches()
        jobs = {j.id: j for j in self._sched.get_jobs(jobstore="default")}
        now = datetime.now(UTC)
        for w in watches:
            job = jobs.pop(f"watch:{w.id}", None)
            args = (self._key, w.id)
            if job is not None and job.name == w.schedule and tuple(job.args) == args:
                missed = job.next_run_time is not None and job.next_run_time < now
                if missed and w.schedule.startswith("every"):
                    # Down past a due run: it runs once now, and the interval counts from
                    # now. Left anchored, the next slot of the old grid could follow the
                    # catch-up run within seconds.
                    job.modify(trigger=parse_spec(w.schedule).trigger(start=now), next_run_time=now)
                    self._say(f"{w.target}: a run was due while the scheduler was down; running it now")
                continue
            try:
                schedule = parse_spec(w.schedule)
            except ScheduleError as exc:
                self._say(f"{w.target}: not scheduled: {exc}")
                continue
            last = datetime.fromisoformat(w.last_run_at) if w.last_run_at else None
            due = max(schedule.next_after(last), now) if last else now
            if job is None:
                self._sched.add_job(_fire, schedule.trigger(), args=args, id=f"watch:{w.id}",
                                    name=w.schedule, next_run_time=due)
                self._say(f"scheduled {w.target} ({w.schedule}); next run {_local(due)}")
            else:
                job.modify(trigger=schedule.trigger(), name=w.schedule, args=args, next_run_time=due)
                self._say(f"rescheduled {w.target} ({w.schedule}); next run {_local(due)}")
        for job in jobs.values():
            job.remove()
            self._say(f"unscheduled {job.id.removeprefix('watch:')} (no longer watched)")

    def next_runs(self) -> dict[str, datetime]:
        """Watch id → its next run time."""
        return {j.id.removeprefix("watch:"): j.next_run_time
                for j in self._sched.get_jobs(jobstore="default") if j.next_run_time}

    def _sync_quietly(self) -> None:
        try:
            self.sync()
        except (KgchatError, sqlite3.Error) as exc:  # e.g. state.db busy; the next sync tries again
            self._say(f"could not read the watches: {exc}")

    def _run_one(self, watch_id: str) -> None:
        self.running.set()
        try:
            self._run([watch_id])
        except KgchatError as exc:
            self._say(f"refresh of {watch_id} failed: {exc}")
        except Exception as exc:  # a bug must not end the schedule; the traceback goes to the log
            log.exception("refresh of %s failed", watch_id)
            self._say(f"refresh of {watch_id} failed: {exc.__class__.__name__}: {exc}")
        finally:
            self.running.clear()


def record_failed_run(store_dir: Path, watch_ids: Sequence[str], error: str) -> None:
    """A scheduled refresh that could not even start (store in use, lock held) still gets
    its row in the runs table, written to state.db alone (no graph needed)."""
    with StateDB.open(Path(store_dir) / STATE_FILE) as state:
        run_id = state.start_run("refresh")
        state.finish_run(run_id, "failed", {"watches": ", ".join(watch_ids), "error": error})


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
