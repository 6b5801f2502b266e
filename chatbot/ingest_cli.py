"""``kgchat ingest`` and ``kgchat extract``: documents and transcripts into the graph."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterator, List

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kg.extract.base import ExtractedTriple, Literal
from kg.ingest.pipeline import IngestSummary, Ingestor
from kg.sources import Document
from kg.sources.document import content_hash


def register(app: typer.Typer, console: Console, err: Console) -> None:
    @app.command()
    def ingest(
        ctx: typer.Context,
        targets: List[str] = typer.Argument(..., help="Files, folders (recursively) and http(s) URLs: "
                                            ".txt .md .html .pdf .docx, .json/.jsonl chat transcripts."),
        prune: bool = typer.Option(False, help="Retract documents ingested from these folders that "
                                               "no longer exist."),
        force: bool = typer.Option(False, help="Re-extract documents even when unchanged."),
        create: bool = typer.Option(False, help="Create the store if it does not exist."),
    ) -> None:
        """Extract facts from documents into the graph, one named graph per document with
        the sentence and confidence behind every fact. Unchanged documents are skipped;
        changed ones replaced in one transaction."""
        from kg.ingest import open_ingestor

        with ctx.obj.open(create=create) as kg:
            with err.status("loading models…"):
                ingestor = open_ingestor(kg)
            with ingestor:
                summary = _ingest_with_progress(ingestor, targets, prune, force, err)
        _print_summary(summary, console, err)
        if summary.failed:
            raise typer.Exit(1)

    @app.command()
    def extract(
        ctx: typer.Context,
        files: List[str] = typer.Argument(..., help="Files or URLs, or - for standard input."),
        fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl (one triple per line) or table."),
    ) -> None:
        """Show what would be extracted, without storing anything. The models load once
        for all the files."""
        from kg.errors import SourceError
        from kg.extract.spacy_rules import SpacyExtractor
        from kg.sources.loaders import load

        settings = ctx.obj.settings()
        docs: list[Document] = []
        failed = 0
        for name in files:
            try:
                if name == "-":
                    text = sys.stdin.read()
                    docs.append(Document("stdin:", text, content_hash(text.encode())))
                else:
                    docs.append(load(name))
            except SourceError as exc:
                err.print(f"[red]error:[/red] {exc}")
                failed += 1
        extractor = SpacyExtractor(settings.extract)
        rows = [row for doc, facts in extractor.extract(docs) for row in _rows(doc, facts)]
        if fmt == "table":
            table = Table("subject", "relation", "object", "conf.", "source", header_style="bold")
            for r in rows:
                table.add_row(r["subject"], r["relation"], r["object"], f"{r['confidence']:.2f}",
                              r["source"])
            console.print(table)
        else:
            for r in rows:
                sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        if failed:
            raise typer.Exit(1)


def _ingest_with_progress(ingestor: Ingestor, targets: list[str], prune: bool, force: bool,
                          err: Console) -> IngestSummary:
    total = len(ingestor.discover(targets))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("ingesting", total=total, rate="")

        def update(uri: str, s: IngestSummary) -> None:
            speed = progress.tasks[0].speed
            progress.update(task, completed=s.documents, description=_short(uri),
                            rate=f"{speed:.1f} docs/s" if speed else "")

        return ingestor.ingest(targets, prune=prune, force=force, progress=update)


def _rows(doc: Document, facts: list[ExtractedTriple]) -> Iterator[dict[str, Any]]:
    for f in facts:
        obj = f.object
        yield {
            "source": doc.uri,
            "subject": f.subject.name, "subject_text": f.subject.text,
            "subject_type": f.subject.type, "subject_span": [f.subject.start, f.subject.end],
            "relation": f.relation, "relation_phrase": f.relation_phrase,
            "object": obj.value if isinstance(obj, Literal) else obj.name,
            "object_text": doc.text[obj.start:obj.end],
            "object_type": obj.datatype if isinstance(obj, Literal) else obj.type,
            "object_span": [obj.start, obj.end],
            "sentence": doc.text[f.sentence[0]:f.sentence[1]], "sentence_span": list(f.sentence),
            "confidence": round(f.confidence, 3),
            **({"turn": f.turn, "speaker": f.speaker} if f.turn is not None else {}),
        }


def _short(uri: str, width: int = 40) -> str:
    tail = uri.rsplit("/", 1)[-1] or uri
    return tail if len(tail) <= width else "…" + tail[-width + 1:]


def _print_summary(s: IngestSummary, console: Console, err: Console) -> None:
    table = Table(show_header=False, title="ingest")
    rate = s.documents / s.seconds if s.seconds else 0.0
    for label, value in (
        ("documents", f"{s.new} new, {s.changed} changed, {s.unchanged} unchanged, "
                      f"{s.failed} failed" + (f", {s.removed} removed" if s.removed else "")),
        ("facts extracted", s.facts),
        ("triples", f"+{s.triples_added} added, -{s.triples_retracted} retracted"),
        ("entities", f"{s.entities_new} new, {s.entities_merged} merged into known ones"),
        ("speed", f"{s.seconds:.1f} s, {rate:.1f} docs/s, {s.words / s.seconds if s.seconds else 0:,.0f} words/s"),
    ):
        table.add_row(label, str(value))
    console.print(table)
    for item, message in s.errors:
        err.print(f"[red]failed:[/red] {message}")
