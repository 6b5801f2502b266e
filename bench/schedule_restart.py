"""Restart ``kgchat schedule`` mid-schedule: the run that fell due while it was down
happens once — not zero times, not once per missed slot.

    .venv/bin/python -m bench.schedule_restart [--every 20 --out bench/out/schedule]

A store watches one small KB file every ``--every`` seconds (refresh without training).
The scheduler runs until its first refresh is logged, is stopped with SIGTERM, stays down
for 2.5 periods (two slots missed) and starts again. Counted from the runs table: refresh
runs while it was down (must be 0), runs in the first ``--every / 2`` seconds after the
restart's first run (the missed slots, coalesced: must be 1), and that the next run after
that comes one period later.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KGCHAT = [sys.executable, "-m", "chatbot"]


def runs(store: Path) -> list[tuple[str, str]]:
    """(started_at, status) of every refresh run, oldest first."""
    with sqlite3.connect(store / "state.db") as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        start = "started_at" if "started_at" in cols else cols[2]
        return [(r[0], r[1]) for r in db.execute(
            f"SELECT {start}, status FROM runs WHERE kind = 'refresh' ORDER BY id")]


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def start(store: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*KGCHAT, "--store", str(store), "schedule", "--no-train", "--sync", "2"],
                            cwd=ROOT, stdout=open(log, "a"), stderr=subprocess.STDOUT)


def wait_runs(store: Path, n: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while len(runs(store)) < n:
        if time.time() > deadline:
            raise SystemExit(f"no refresh run logged within {timeout:.0f} s; see the schedule log")
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=int, default=20, help="the watch's period, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/schedule")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    store, kb, log = args.out / "store", args.out / "facts.txt", args.out / "schedule.log"
    kb.write_text("Zorblat|directed_by|Quinn Arvel\n")
    subprocess.run([*KGCHAT, "--store", str(store), "init"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run([*KGCHAT, "--store", str(store), "import", str(kb)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*KGCHAT, "--store", str(store), "sources", "add", str(kb), "--every", f"{args.every}s"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    first = start(store, log)
    wait_runs(store, 1, 120 + args.every)  # a watch never refreshed is due at once
    time.sleep(args.every / 4)
    first.send_signal(signal.SIGTERM)
    first.wait(120)
    down_at, before = time.time(), len(runs(store))
    time.sleep(2.5 * args.every)
    during = len(runs(store)) - before
    up_at = time.time()
    second = start(store, log)
    try:
        wait_runs(store, before + 1, 120 + args.every)
        time.sleep(args.every * 1.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(120)
    after = [stamp(s) for s, _ in runs(store)[before:]]
    catch_up = [t for t in after if t - after[0] < args.every / 2]  # the missed slots, coalesced
    gap = round(after[len(catch_up)] - after[0], 1) if len(after) > len(catch_up) else None
    result = {"every_s": args.every, "down_s": round(up_at - down_at, 1), "slots_missed": 2,
              "runs_while_down": during, "runs_at_restart": len(catch_up),
              "restart_to_first_run_s": round(after[0] - up_at, 1),
              "seconds_to_the_next_run": gap, "runs": runs(store)}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    print(f"watch every {args.every} s; scheduler down {result['down_s']} s (2 slots missed): "
          f"{during} runs while down, {len(catch_up)} run at the restart, next one {gap} s later")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
