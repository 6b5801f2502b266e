"""``kgchat ask`` and ``kgchat chat``: questions in, grounded answers out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chatbot.answer import Answer


def _writer(name: str) -> str:
    # ".../models/generator/versions/v0003" → "generator v0003"
    parts = name.rstrip("/").split("/")
    return f"generator {parts[-1]}" if len(parts) > 1 and parts[-2] == "versions" else name


def print_answer(console: Console, a: Answer) -> None:
    colour = {"answered": "green", "unknown": "yellow", "clarify": "cyan"}[a.status]
    console.print(f"[bold {colour}]{a.answer}[/bold {colour}]")
    if a.status == "clarify":
        return
    if a.status == "answered":
        console.print(f"[dim]topic:[/dim] {a.topic}   [dim]path:[/dim] {' → '.join(a.path)}   "
                      f"[dim]confidence:[/dim] {a.confidence:.2f}   [dim]{a.latency_ms:.0f} ms[/dim]   "
                      f"[dim]written by:[/dim] {_writer(a.generator)}")
        console.print(f"[dim]answer entities:[/dim] {', '.join(a.entities[:10])}"
                      + (f" (+{len(a.entities) - 10})" if len(a.entities) > 10 else ""))
        console.print("[dim]evidence:[/dim]")
    for chain in a.evidence:
        console.print("  " + "  ·  ".join(f"{h.subject} —{h.relation}→ {h.object}" for h in chain),
                      markup=False, highlight=False)
    facts = [s for s in a.sources if s.kind != "passage"]
    passages = [s for s in a.sources if s.kind == "passage"]
    if facts:
        console.print("[dim]sources:[/dim]")
    for s in facts:
        where = f" [chars {s.start}–{s.end}]" if s.start is not None else ""
        line = f"  {s.document}{where}" + (f'\n    "{s.sentence}"' if s.sentence else "")
        console.print(line, markup=False, highlight=False)
    if passages:
        console.print("[dim]related passages (text retrieval):[/dim]")
    for s in passages[:3]:
        text = s.sentence if len(s.sentence) < 160 else s.sentence[:157] + "…"
        console.print(f"  {s.title or s.document} [chars {s.start}–{s.end}]\n    \"{text}\"",
                      markup=False, highlight=False)
    if a.note:
        console.print(f"[dim]note: {a.note}[/dim]")


def register(app: typer.Typer, console: Console, err: Console) -> None:
    @app.command()
    def ask(
        ctx: typer.Context,
        question: Optional[str] = typer.Argument(None, help="A question in plain words."),
        file: Optional[Path] = typer.Option(None, "--file", "-f",
                                            help="Answer every line of this file (one question per line)."),
        fmt: str = typer.Option("text", "--format", help="text or jsonl (one JSON object per answer)."),
        generator: Optional[str] = typer.Option(None, help="A causal LM to write answers: local folder "
                                                "or cached hub id (default: the store's trained model)."),
    ) -> None:
        """Answer questions from the graph: the answer, its entities, the evidence paths and
        the sentences or files behind each hop. Models and indexes load once for a --file."""
        from chatbot.answer import open_engine

        if fmt not in ("text", "jsonl"):
            raise typer.BadParameter("--format must be text or jsonl")
        if (question is None) == (file is None):
            raise typer.BadParameter("give a QUESTION or --file, not both")
        if file is not None and not file.is_file():
            raise typer.BadParameter(f"{file}: no such file")
        questions = ([question] if question is not None else
                     [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()])
        with ctx.obj.open() as kg:
            with err.status("loading the graph index and models…"):
                engine = open_engine(kg, generator=generator)
            for q in questions:
                a = engine.ask(q)
                if fmt == "jsonl":
                    sys.stdout.write(a.model_dump_json() + "\n")
                    sys.stdout.flush()
                else:
                    console.print(f"[bold]Q:[/bold] {q}", markup=True, highlight=False)
                    print_answer(console, a)
                    console.print()

    @app.command()
    def chat(
        ctx: typer.Context,
        generator: Optional[str] = typer.Option(None, help="As for `ask`."),
    ) -> None:
        """An interactive session: ask questions ("and who wrote them?" follows on from the
        last answer), state facts to teach the graph, /quit to leave."""
        from chatbot.answer import open_engine
        from chatbot.session import ChatSession

        with ctx.obj.open() as kg:
            with err.status("loading the graph index and models…"):
                engine = open_engine(kg, generator=generator)
            session = ChatSession(engine)
            console.print("[dim]kgchat — ask a question or state a fact; /quit to leave.[/dim]")
            while True:
                try:
                    line = console.input("[bold]you>[/bold] ")
                except (EOFError, KeyboardInterrupt):
                    break
                if line.strip() in ("/quit", "/exit"):
                    break
                if not line.strip():
                    continue
                reply = session.turn(line)
                if isinstance(reply, Answer):
                    print_answer(console, reply)
                else:
                    console.print(f"[green]{reply}[/green]")
