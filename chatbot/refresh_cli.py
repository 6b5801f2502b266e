"""Watched sources and keeping the store current: ``kgchat sources add|unwatch|watched``,
``kgchat refresh`` (one pass) and ``kgchat schedule`` (passes on the watches' schedules).

``sources add/unwatch/watched`` touch only state.db, so they work while another process
(``kgchat serve``, ``kgchat schedule``) holds the graph open.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kg.errors import KgchatError, StoreError, StoreNotFoundError
from kg.state import StateDB, WatchRecord


def register(app: typer.Typer, sources_app: typer.Typer, console: Console | None = None,
             err: Console | None = None) -> None:
    console = console or Console()
    err = err or Console(stderr=True)

    @sources_app.command("add")
    def add(
        ctx: typer.Context,
        target: str = typer.Argument(..., help="A file, a folder (its documents, recursively) or an http(s) URL."),
        every: str | None = typer.Option(None, "--every", help="How often: 30m, 1h, 2d, 1h30m … (default 1h)."),
        cron: str | None = typer.Option(None, "--cron", help='A crontab schedule, e.g. "0 * * * *" '
                                                                 "(minute hour day month weekday, local time)."),
    ) -> None:
        """Watch a file, folder or URL, to be kept current by `refresh` and `schedule`.

        Each pass takes in what changed in it and retracts what disappeared. Adding a
        watched source again changes its schedule."""
        from kg.watch import new_watch, parse_schedule

        schedule = parse_schedule(every=every if every or cron else "1h", cron=cron)
        watch = new_watch(target, schedule)
        with _state(ctx.obj.store_dir) as state:
            new = state.put_watch(watch)
        verb = "watching" if new else "now watching"
        console.print(f"{verb} {watch.target} ({watch.kind}) {schedule.spec} as [bold]{watch.id}[/bold]; "
                      f"`kgchat refresh` takes it in now, `kgchat schedule` on schedule")

    @sources_app.command("unwatch")
    def unwatch(ctx: typer.Context,
                watches: list[str] = typer.Argument(..., help="Watch ids, id prefixes or targets.")) -> None:
        """Stop watching sources. What they brought in stays (`kgchat sources remove` retracts)."""
        with _state(ctx.obj.store_dir) as state:
            for key in watches:
                w = state.find_watch(key)
                if w is None:
                    raise KgchatError(f"no watch {key!r}; `kgchat sources watched` lists them")
                state.delete_watch(w.id)
                console.print(f"stopped watching {w.target}")

    @sources_app.command("watched")
    def watched(ctx: typer.Context,
                as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
        """The watched sources: schedule, last run, last change, last error."""
        with _state(ctx.obj.store_dir) as state:
            records = state.watches()
        if as_json:
            console.print_json(json.dumps([asdict(w) for w in records]))
        else:
            print_watches(console, records)

    @app.command()
    def refresh(
        ctx: typer.Context,
        watch: list[str] = typer.Option([], "--watch", "-w", help="Only this watch (id, prefix or target; repeatable)."),
        train: bool = typer.Option(True, "--train/--no-train", help="Run a learning round after the writes."),
        pairs: int = typer.Option(3000, help="Learning round: new QA pairs."),
        steps: int = typer.Option(2000, help="Learning round: most generator steps."),
        epochs: float = typer.Option(10.0, help="Learning round: passes over the new pairs (capped by --steps)."),
        gate_margin: float = typer.Option(0.02, help="Most accuracy the round may lose on earlier pairs."),
        reason: bool = typer.Option(True, "--reason/--no-reason", help="Update inferences after a change."),
        wait: float = typer.Option(0.0, help="Seconds to wait for a refresh that is running already."),
        timeout: float = typer.Option(30.0, help="Seconds a URL may take to answer."),
    ) -> None:
        """One pass over the watched sources: changes in, deletions out, then learning.

        Ingests what is new or changed, retracts what disappeared, updates inferences,
        then runs a learning round whose model replaces the current one only if it passes
        the gate. Exit code 1 if a source failed."""
        from learners.lock import refresh_lock
        from learners.refresh import RefreshOptions
        from learners.refresh import refresh as run_refresh

        c = ctx.obj
        options = RefreshOptions(watches=tuple(watch), train=train, reason=reason, fetch_timeout=timeout,
                                 plan=_plan(pairs, steps, epochs, gate_margin) if train else None)
        _require_store(c.store_dir)
        with refresh_lock(c.store_dir, wait=wait, what="kgchat refresh"), c.open() as kg:
            with err.status("refreshing…") as status:
                report = run_refresh(kg, replace(options, log=lambda line: status.update(line)))
        print_report(console, report)
        if report.status != "ok":
            raise typer.Exit(1)

    @app.command()
    def schedule(
        ctx: typer.Context,
        train: bool = typer.Option(True, "--train/--no-train", help="Run a learning round after each pass."),
        pairs: int = typer.Option(3000, help="Learning round: new QA pairs."),
        steps: int = typer.Option(2000, help="Learning round: most generator steps."),
        epochs: float = typer.Option(10.0, help="Learning round: passes over the new pairs."),
        gate_margin: float = typer.Option(0.02, help="Most accuracy a round may lose on earlier pairs."),
        sync: float = typer.Option(30.0, help="Seconds between looks at the watch list for added or "
                                              "removed watches."),
        wait: float = typer.Option(600.0, help="Seconds a due refresh waits for one running elsewhere."),
    ) -> None:
        """Refresh each watched source on its schedule until Ctrl-C or SIGTERM.

        Runs missed while it was stopped happen once when it starts again. The store is
        opened for each run only; it cannot run beside a process that keeps the store open
        (`kgchat serve`)."""
        from learners.lock import refresh_lock
        from learners.refresh import RefreshOptions
        from learners.refresh import refresh as run_refresh
        from learners.schedule import RefreshScheduler, record_failed_run

        c = ctx.obj
        _require_store(c.store_dir)
        try:
            with c.open():
                pass  # fail now, not at the first run, if another process holds the store
        except StoreError as exc:
            raise StoreError(f"{exc} `kgchat schedule` opens the store for every run, so it cannot "
                             f"share it with a process that keeps it open (such as `kgchat serve`); "
                             f"stop that process first.") from exc
        stop, cancel = threading.Event(), threading.Event()
        options = RefreshOptions(train=train, cancel=cancel,
                                 plan=_plan(pairs, steps, epochs, gate_margin) if train else None)

        def say(line: str) -> None:
            # One unwrapped line per event: this is a log, often read from a file.
            console.print(f"[dim]{datetime.now():%Y-%m-%d %H:%M:%S}[/dim] {line}", highlight=False,
                          soft_wrap=True)

        def job(ids: Sequence[str]) -> None:
            say(f"refresh of {', '.join(ids)} starting")
            with ExitStack() as stack:
                try:
                    stack.enter_context(refresh_lock(c.store_dir, wait=wait, what="kgchat schedule"))
                    kg = stack.enter_context(c.open())
                except KgchatError as exc:
                    record_failed_run(c.store_dir, ids, str(exc))
                    raise
                report = run_refresh(kg, replace(options, watches=tuple(ids), log=say))
            say(f"refresh of {', '.join(ids)} {report.status} in {report.seconds:.1f} s: "
                + ", ".join(f"{k} {v}" for k, v in report.summary().items()))

        def on_signal(signum: int, frame: Any) -> None:
            if stop.is_set():
                err.print("stopping at once")
                os._exit(130)  # a write cut short is repaired when the store is next opened
            stop.set()
            cancel.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with RefreshScheduler(c.store_dir, job, sync_seconds=sync, log_line=say) as scheduler:
                say(f"scheduler running on {c.store_dir} ({len(scheduler.next_runs())} watched "
                    f"source(s)); Ctrl-C stops it")
                while not stop.wait(0.5):
                    pass
                if scheduler.running.is_set():
                    say("stopping: the running refresh stops at its next step (Ctrl-C again quits at once)")
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        say("scheduler stopped")


def print_watches(console: Console, records: list[WatchRecord]) -> None:
    """The watched-sources table (`sources list`, `sources watched`)."""
    if not records:
        console.print("no watched sources (`kgchat sources add PATH_OR_URL --every 1h` adds one)")
        return
    table = Table(title="watched sources", header_style="bold")
    for name in ("watch", "kind", "schedule", "last run", "last change", "last error", "target"):
        table.add_column(name, overflow="fold")  # ids are typed back: never cut them short
    for w in records:
        error = w.last_error or ""
        error = error if len(error) <= 80 else error[:79] + "…"  # `sources watched --json` has it all
        table.add_row(w.id, w.kind, w.schedule, _when(w.last_run_at) or "never", _when(w.last_change_at),
                      f"[red]{escape(error)}[/red]", w.target)
    console.print(table)


def _when(iso: str | None) -> str:
    """A stored UTC time as local minutes."""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M") if iso else ""


def print_report(console: Console, r: Any) -> None:
    """A refresh's report: sources, triples, inferences, the learning round."""
    from chatbot.train_cli import print_round

    counts = ", ".join(f"{len(r.of(a))} {a}" for a in ("added", "updated", "removed", "failed"))
    console.print(f"refresh: {r.watches} watched source(s) in {r.seconds:.1f} s: {counts}, "
                  f"{r.unchanged} unchanged" + (" [yellow](cancelled)[/yellow]" if r.status == "cancelled" else ""))
    if r.changes:
        table = Table("watch", "source", "result", "detail", header_style="bold")
        for ch in r.changes:
            style = {"failed": "red", "removed": "yellow"}.get(ch.action, "green")
            table.add_row(ch.watch, ch.name, f"[{style}]{ch.action}[/{style}]", ch.error)
        console.print(table)
    for e in r.watch_errors:
        console.print(f"[red]error:[/red] {e}")
    if r.graph_changed:
        console.print(f"triples: +{r.triples_added} added, -{r.triples_retracted} retracted")
    if r.reasoning:
        i = r.reasoning
        console.print(f"inferences ({i['mode']}): {i['inferred_before']} → {i['inferred']} triples")
    if r.training:
        print_round(console, r.training)
    elif r.training_skipped:
        console.print(f"learning round: {r.training_skipped}")


def _plan(pairs: int, steps: int, epochs: float, gate_margin: float) -> Any:
    from learners.train import TrainPlan

    return TrainPlan(pairs=pairs, generator_steps=steps, epochs=epochs, gate_margin=gate_margin)


def _require_store(store_dir: Path) -> None:
    if not (store_dir / "state.db").exists():
        raise StoreNotFoundError(store_dir)


def _state(store_dir: Path) -> StateDB:
    """state.db alone: no graph, so this works while another process holds the store."""
    _require_store(store_dir)
    return StateDB.open(store_dir / "state.db")
