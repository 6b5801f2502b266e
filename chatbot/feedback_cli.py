"""``kgchat feedback list|apply|reject``: the operator's side of users' corrections.

The service queues feedback it may not apply itself (no token on the request, no
``--accept-feedback``) in ``<store>/feedback/feedback.jsonl``; these commands review it.
``list`` and ``reject`` only read and append that file (they work while the service runs);
``apply`` writes to the graph, so it needs the store (stop the service first).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from kg.errors import FeedbackError
from kg.feedback import Correction, FeedbackQueue, QueueItem, apply_queued
from kg.store import KnowledgeStore


def _row(item: QueueItem) -> dict[str, object]:
    c = item.correction
    return {"id": c.id, "status": item.status, "received_at": c.received_at, "via": c.via,
            "speaker": c.speaker, "question": c.question, "answer": c.answer,
            "verdict": "right" if c.correct else "wrong", "right_answer": c.right_answer,
            "topic": c.topic, "relations": c.relations, "source_id": item.source_id,
            "detail": item.detail}


def register(app: typer.Typer, console: Console, err: Console) -> None:
    feedback_app = typer.Typer(help="Review users' corrections: list, apply, reject.",
                               no_args_is_help=True)
    app.add_typer(feedback_app, name="feedback")

    @feedback_app.command("list")
    def list_(ctx: typer.Context,
              all_: bool = typer.Option(False, "--all", help="Also applied, rejected and failed items."),
              as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
        """Feedback waiting for a decision (every item with --all), oldest first."""
        items = [i for i in FeedbackQueue(ctx.obj.store_dir).items() if all_ or i.status == "pending"]
        if as_json:
            for item in items:
                console.print_json(json.dumps(_row(item), ensure_ascii=False))
            return
        if not items:
            console.print("no feedback waiting" if not all_ else "no feedback yet")
            return
        table = Table("id", "status", "received", "question", "answer given", "verdict → right answer",
                      header_style="bold")
        for item in items:
            c = item.correction
            verdict = "right" if c.correct else f"wrong → {c.right_answer or '?'}"
            table.add_row(c.id[:12], item.status, c.received_at, c.question, c.answer, verdict)
        console.print(table)

    @feedback_app.command("apply")
    def apply(ctx: typer.Context,
              item_id: str = typer.Argument(..., help="A feedback id (or a prefix naming one).")) -> None:
        """Write one correction to the graph: a feedback source whose triple supersedes the
        contradicted one (kept, with its validity ended); the next `kgchat train` learns it."""
        queue = FeedbackQueue(ctx.obj.store_dir)
        item = queue.find(item_id)
        c = item.correction
        with ctx.obj.open() as kg:
            if not c.identifiable() and c.statements and item.status != "applied":
                said = _as_statement(kg, c)
                queue.decide(c.id, "applied", detail=said)
                console.print(f"applied {c.id[:12]}: {said}")
                return
            try:
                applied = apply_queued(kg, queue, c.id)
            except FeedbackError as exc:
                if item.status == "pending":
                    queue.decide(c.id, "failed", detail=str(exc))
                raise
        console.print(f"applied {c.id[:12]} as source {applied.source_id}:")
        for line in applied.lines:
            console.print(f"  {line}")

    @feedback_app.command("reject")
    def reject(ctx: typer.Context,
               item_id: str = typer.Argument(..., help="A feedback id (or a prefix naming one)."),
               reason: str = typer.Option("", help="Why, kept with the decision.")) -> None:
        """Decide not to apply a feedback item (it stays in the file, marked rejected). An
        applied one is undone with `kgchat sources remove <its source id>` instead."""
        queue = FeedbackQueue(ctx.obj.store_dir)
        item = queue.find(item_id)
        if item.status == "applied":
            raise FeedbackError(f"feedback {item.correction.id} was applied already; undo it with "
                                f"`kgchat sources remove {item.source_id}`")
        queue.decide(item.correction.id, "rejected", detail=reason)
        console.print(f"rejected {item.correction.id[:12]}")


def _as_statement(kg: KnowledgeStore, c: Correction) -> str:
    """An answer to a question nothing answered: stored as a stated fact, as in chat."""
    from kg.ingest import open_ingestor
    from kg.ingest.chat import ingest_turn

    with open_ingestor(kg, n_process=1) as ingestor:
        for text in c.statements:
            result = ingest_turn(ingestor, f"feedback-{c.id}", "1", text, speaker=c.speaker)
            if result.facts:
                return "stated " + "; ".join(
                    f"{f.subject.name} — {f.relation} → {getattr(f.object, 'name', None) or f.object.value}"
                    for f in result.facts)
    raise FeedbackError(f"feedback {c.id} states no fact the extractor can find and names no "
                        "fact in the graph; reject it")
