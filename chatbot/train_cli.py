"""``kgchat train`` (one continual-learning round) and ``kgchat models list|show|rollback``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chatbot.generate.registry import ModelRegistry


def print_round(console: Console, r: dict[str, Any]) -> None:
    """The round's summary: pairs, accuracy before → after, the gate's verdict."""
    if not r.get("steps"):
        console.print(f"round {r['round']}: {r['reason']}")
        return
    console.print(f"round {r['round']}: {r['changed_sources']} changed source(s), {r['removed_sources']} removed; "
                  f"pairs {r['new']} new, {r['updated']} updated (changed facts), {r['retired']} retired, "
                  f"{r['replayed']} replayed; {r['steps']} steps, {r['examples']} examples in {r['seconds']} s"
                  + (f" (resumed at step {r['resumed_from']})" if r.get("resumed_from") else ""))
    b, a = r["before"], r["after"]
    for side, what in (("old", "held-back earlier pairs"), ("new", "held-back new pairs")):
        if side in a:
            console.print(f"  {what}: {b.get(side, 0.0):.1%} → {a[side]:.1%}")
    verdict = f"[green]{r['reason']}; now answering with {r['version']}[/green]" if r["accepted"] \
        else f"[yellow]rejected, the current model stays: {r['reason']}[/yellow]"
    console.print("  " + verdict)


def register(app: typer.Typer, console: Console, err: Console) -> None:
    models_app = typer.Typer(help="Versions of the answer generator: list, show, roll back.",
                             no_args_is_help=True)
    app.add_typer(models_app, name="models")
    eval_app = typer.Typer(help="Benchmarks that kgchat runs itself.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("continual")
    def eval_continual(
        kb: Path = typer.Option(..., exists=True, dir_okay=False, help="A knowledge base file (any format `import` reads)."),
        rounds: int = typer.Option(4, help="Parts the KB is split into, one per round."),
        strategies: str = typer.Option("naive,replay,ewc,meta,joint", help="Comma-separated, any of these."),
        out: Path = typer.Option(Path("continual-eval"), help="Folder for results.json and heatmaps."),
        subjects: int = typer.Option(40, help="Subjects (e.g. films) per part."),
        epochs: float = typer.Option(30.0, help="Passes over each round's new examples (joint: over all so far)."),
        new_epochs: float = typer.Option(0.0, help="Passes over new examples in rounds 2+ for all but "
                                                    "joint (0: --epochs); a model that knows the format "
                                                    "needs fewer."),
        replay_ratio: float = typer.Option(0.5, help="Replayed examples per new example seen, spread over "
                                                      "the whole buffer."),
        open_epochs: float = typer.Option(0.0, help="Passes over new open-book examples in rounds 2+ for "
                                                     "all but joint; replay is then closed-book only "
                                                     "(0: as many as closed-book)."),
        later_lr: float = typer.Option(0.0, help="Learning rate in rounds 2+ for all but joint "
                                                 "(0: the round-1 rate, 3e-3)."),
        ewc_weight: float = typer.Option(1e3, help="EWC penalty weight (ewc strategy)."),
        reptile_epsilon: float = typer.Option(0.5, help="Reptile step size (meta strategy)."),
        updates: int = typer.Option(20, help="Facts of part 1 changed and taught in a last round."),
        seed: int = typer.Option(0, help="Which subjects fall in which part; tune on another seed than "
                                         "the one you report."),
    ) -> None:
        """Split KB into ROUNDS disjoint parts, learn them one per round with each strategy,
        and print the accuracy matrix R[i][j] (closed-book accuracy on part j after round i),
        ACC, BWT and forgetting, with each strategy's training seconds and examples."""
        from learners.continual_eval import STRATEGIES, EvalConfig, run_eval

        names = tuple(s.strip() for s in strategies.split(",") if s.strip())
        bad = [n for n in names if n not in STRATEGIES]
        if bad or not names:
            err.print(f"[red]unknown strategies {bad}; choose from {', '.join(STRATEGIES)}[/red]")
            raise typer.Exit(2)
        cfg = EvalConfig(rounds=rounds, strategies=names, subjects_per_round=subjects, epochs=epochs,
                         new_epochs=new_epochs or None, open_epochs=open_epochs or None,
                         replay_ratio=replay_ratio, later_lr=later_lr or None,
                         ewc_weight=ewc_weight, reptile_epsilon=reptile_epsilon, updates=updates, seed=seed)
        results = run_eval(kb, out, cfg, log=lambda line: err.print(line, markup=False, highlight=False))
        table = Table(title=f"continual learning on {kb.name}: {rounds} rounds")
        for col in ("strategy", "ACC", "BWT", "forgetting", "ACC open-book", "train s", "examples",
                    "compute vs joint per round", "updated: new / stale"):
            table.add_column(col, justify="right")
        for name, r in results["strategies"].items():
            u = r.get("update") or {}
            table.add_row(name, f"{r['acc']:.3f}", f"{r['bwt']:+.3f}", f"{r['forgetting']:.3f}",
                          f"{r['acc_open']:.3f}", f"{r['train_seconds']:.0f}", str(r["examples"]),
                          " / ".join(f"{c:.2f}" for c in r.get("compute_vs_joint", [])),
                          f"{u['new_value']:.2f} / {u['stale']:.2f}" if u else "")
        console.print(table)
        for name, r in results["strategies"].items():
            console.print(f"{name}: R =")
            for row in r["matrix"]:
                console.print("  " + "  ".join("  -  " if v is None else f"{v:.2f}" for v in row))
        console.print(f"wrote {out / 'results.json'} and heatmap-*.png")

    @app.command()
    def train(
        ctx: typer.Context,
        pairs: int = typer.Option(3000, help="New QA pairs per round, from what changed in the graph."),
        steps: int = typer.Option(2000, help="Most generator steps per round (batches of 32)."),
        epochs: float = typer.Option(10.0, help="Passes over the round's new and changed pairs (with their "
                                                 "replay, capped by --steps)."),
        replay_ratio: float = typer.Option(1.0, help="Replayed examples per new example seen, drawn over "
                                                      "the whole buffer."),
        buffer_size: int = typer.Option(5000, help="Replay buffer capacity (pairs)."),
        buffer_policy: str = typer.Option("reservoir", help="reservoir | balanced (per source)."),
        regularizer: str = typer.Option("none", help="none | l2sp | ewc: pull weights towards the current model."),
        meta: str = typer.Option("none", help="none | reptile: Reptile across sources (new pairs and each "
                                              "replayed source are tasks)."),
        lora_rank: int = typer.Option(0, help="> 0: train LoRA adapters of this rank (saved as a PEFT adapter)."),
        closed_book: bool = typer.Option(True, help="Also teach each pair without its evidence."),
        gate_margin: float = typer.Option(0.02, help="Most accuracy the round may lose on earlier pairs."),
        gate: bool = typer.Option(True, help="--no-gate: swap the new model in whatever it measures."),
        scorer_epochs: int = typer.Option(3, help="Epochs of path-scorer training."),
        generator: str = typer.Option("", help="Round 1 starts from this causal LM (folder or cached "
                                               "hub id) instead of the tiny default."),
        seed: int = typer.Option(0),
    ) -> None:
        """One learning round on what changed since the last: QA pairs for new and changed
        facts plus a replay sample of earlier ones; pairs whose facts were retracted retire.
        The new model replaces the current one only if it passes the gate (no more than
        --gate-margin lost on held-back earlier pairs, new pairs learned); an interrupted
        round resumes from its last checkpoint."""
        from kg.resolve import SentenceTransformerEmbedder
        from learners.train import TrainPlan, train as run_train

        if buffer_policy not in ("reservoir", "balanced") or regularizer not in ("none", "l2sp", "ewc") \
                or meta not in ("none", "reptile"):
            err.print("[red]--buffer-policy is reservoir|balanced, --regularizer none|l2sp|ewc, "
                      "--meta none|reptile[/red]")
            raise typer.Exit(2)
        plan = TrainPlan(pairs=pairs, generator_steps=steps, epochs=epochs, scorer_epochs=scorer_epochs,
                         generator=generator, seed=seed, closed_book=closed_book,
                         replay_ratio=replay_ratio, buffer_size=buffer_size, buffer_policy=buffer_policy,
                         regularizer=regularizer, gate_margin=gate_margin, gate=gate,
                         lora_rank=lora_rank, meta=meta)
        with ctx.obj.open() as kg:
            embedder = SentenceTransformerEmbedder(kg.settings.resolve.embedding_model)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]:.3f}  {task.fields[rate]:.0f} examples/s"),
                          TimeElapsedColumn(), console=err) as progress:
                state: dict = {}

                def on_stage(name: str, total: int) -> None:
                    if "task" in state:
                        progress.update(state["task"], completed=progress.tasks[state["task"]].total)
                    state["task"] = progress.add_task(name, total=total or None, loss=0.0, rate=0.0)
                    state["start"] = time.perf_counter()

                def on_step(step: int, loss: float) -> None:
                    elapsed = time.perf_counter() - state["start"]
                    progress.update(state["task"], completed=step, loss=loss,
                                    rate=step * 32 / elapsed if elapsed > 0 else 0.0)

                report = run_train(kg, plan, embedder, on_stage, on_step)
        print_round(console, report.generator)
        if report.scorer:
            console.print(f"path scorer refitted on {report.pairs} pairs: {json.dumps(report.scorer)}")
        if report.generator.get("steps") and not report.generator["accepted"]:
            raise typer.Exit(1)

    @models_app.command("list")
    def list_(ctx: typer.Context) -> None:
        """Every generator version, its round and gate figures; * marks the current one."""
        registry = ModelRegistry(ctx.obj.store_dir / "models" / "generator")
        versions = registry.list()
        if not versions:
            console.print("no model versions yet: run `kgchat train`")
            return
        table = Table()
        for col in ("", "version", "round", "steps", "earlier before → after", "new before → after", "parent"):
            table.add_column(col)
        for v in versions:
            m = v.metrics
            b, a = m.get("before", {}), m.get("after", {})
            table.add_row("*" if v.current else "", v.name, str(m.get("round", "")), str(v.info.get("steps", "")),
                          f"{b.get('old', 0):.1%} → {a['old']:.1%}" if "old" in a else "",
                          f"{b.get('new', 0):.1%} → {a['new']:.1%}" if "new" in a else "",
                          m.get("parent", ""))
        console.print(table)

    @models_app.command("show")
    def show(ctx: typer.Context, version: str = typer.Argument(..., help="v3, 3 or v0003")) -> None:
        """A version's marker: metrics, counters and the resolved training config (JSON)."""
        v = ModelRegistry(ctx.obj.store_dir / "models" / "generator").get(version)
        console.print_json(json.dumps({"version": v.name, "current": v.current, "path": str(v.path), **v.info}))

    @models_app.command("rollback")
    def rollback(ctx: typer.Context, version: str = typer.Argument(..., help="The version to answer with.")) -> None:
        """Answer with an earlier version again (later ones are kept; roll forward the same way)."""
        name = ModelRegistry(ctx.obj.store_dir / "models" / "generator").set_current(version)
        console.print(f"now answering with {name}")
