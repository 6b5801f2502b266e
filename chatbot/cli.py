"""The ``kgchat`` command line. Configuration is resolved here, once, and handed down."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kg.config import Settings, load_settings
from kg.errors import ConfigError, KgchatError
from kg.importers import FORMATS, expand_paths
from kg.results import GRAPH_FORMATS, RESULT_FORMATS, SERIALIZERS, serialize_graph, write_table
from chatbot.ingest_cli import register as register_ingest
from chatbot.ask_cli import register as register_ask
from chatbot.train_cli import register as register_train
from chatbot.refresh_cli import print_watches, register as register_refresh
from chatbot.serve_cli import register as register_serve
from chatbot.feedback_cli import register as register_feedback
from kg.store import ImportReport, KnowledgeStore

app = typer.Typer(
    help="kgchat: a chatbot over a knowledge graph it builds from your documents.\n\n"
    "Every command works on one store directory (--store, or $KGCHAT_STORE).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="See and remove imported sources; watch sources to refresh.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")

console = Console()
err = Console(stderr=True)


class Context:
    def __init__(self, store_dir: Path, overrides: dict[str, Any]) -> None:
        self.store_dir = store_dir
        self.overrides = overrides

    def settings(self, extra: dict[str, Any] | None = None) -> Settings:
        merged = json.loads(json.dumps(self.overrides))
        for section, values in (extra or {}).items():
            merged.setdefault(section, {}).update(values)
        return load_settings(self.store_dir, merged)

    def open(self, extra: dict[str, Any] | None = None, *, create: bool = False) -> KnowledgeStore:
        kg = KnowledgeStore.open(self.store_dir, self.settings(extra), create=create)
        for action in kg.recovered:
            err.print(f"[yellow]recovered after an interrupted run:[/yellow] {action}")
        return kg


def _parse_sets(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. store.backend=sparql")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[name] = value
    return out


@app.callback()
def _root(
    ctx: typer.Context,
    store: Path = typer.Option(
        Path(os.environ.get("KGCHAT_STORE", "~/.kgchat")), "--store", "-s",
        help="Store directory (created by `init`).", show_default="$KGCHAT_STORE or ~/.kgchat"),
    set_: List[str] = typer.Option(
        [], "--set", help="Override a setting, e.g. --set store.backend=sparql (repeatable)."),
) -> None:
    ctx.obj = Context(store.expanduser(), _parse_sets(set_))


# -- init / import -------------------------------------------------------------------

@app.command()
def init(ctx: typer.Context) -> None:
    """Create an empty store directory with a default kgchat.toml."""
    c: Context = ctx.obj
    with c.open(create=True) as kg:
        console.print(f"store ready at [bold]{kg.root}[/bold] (backend: {kg.backend.name}); "
                      f"settings in {kg.root / 'kgchat.toml'}")


@app.command("import")
def import_(
    ctx: typer.Context,
    files: List[Path] = typer.Argument(..., help="RDF or delimited triple files, or folders of them."),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f",
        help=f"Force a format ({', '.join(FORMATS)}); by default from the extension "
             "(.txt files are sniffed for | or TAB)."),
    literals: Optional[str] = typer.Option(
        None, help="Delimited files: 'auto' makes year/number/date-looking objects typed literals."),
    literal_relation: List[str] = typer.Option(
        [], "--literal-relation", help="Delimited files: a relation whose objects are literals (repeatable)."),
    force: bool = typer.Option(False, help="Rewrite sources even when unchanged."),
    create: bool = typer.Option(False, help="Create the store if it does not exist."),
) -> None:
    """Load knowledge-base files: Turtle, N-Triples, N-Quads, TriG, JSON-LD, RDF/XML, or
    `subject|relation|object` / tab-separated lines. Each file becomes one source in its own
    named graph; unchanged files are skipped, changed ones replaced atomically."""
    c: Context = ctx.obj
    extra: dict[str, Any] = {"import": {}}
    if literals:
        extra["import"]["literals"] = literals
    if literal_relation:
        extra["import"]["literal_relations"] = literal_relation
    reports: list[ImportReport] = []
    files = expand_paths(files)
    with c.open(extra, create=create) as kg, _progress() as progress:
        task = progress.add_task("importing", total=len(files))
        for path in files:
            progress.update(task, description=f"importing {path.name}")
            reports.extend(kg.import_files([path], fmt, force=force))
            progress.advance(task)
    _print_import_reports(reports)
    if any(r.action == "failed" for r in reports):
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)


def _print_import_reports(reports: list[ImportReport]) -> None:
    table = Table("file", "result", "triples", "seconds", "source id", header_style="bold")
    for r in reports:
        style = {"failed": "red", "unchanged": "dim"}.get(r.action, "green")
        table.add_row(r.path, f"[{style}]{r.action}[/{style}]", str(r.triples),
                      f"{r.seconds:.2f}", r.source_id)
    console.print(table)
    for r in reports:
        if r.error:
            err.print(f"[red]error:[/red] {r.error}")
        if r.inferred is not None:
            i = r.inferred
            console.print(f"[dim]inferences ({i.mode}): +{i.added} -{i.removed}, "
                          f"{i.total} in all, {i.seconds:.2f} s[/dim]")


# -- sparql --------------------------------------------------------------------------

@app.command()
def sparql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="A query, a file holding one, or - for standard input."),
    fmt: str = typer.Option(
        "table", "--format", "-f",
        help=f"SELECT/ASK: {', '.join(RESULT_FORMATS)}; CONSTRUCT/DESCRIBE: "
             f"{', '.join(k for k in GRAPH_FORMATS if k != 'table')}."),
    update: bool = typer.Option(False, "--update", help="Allow SPARQL updates (read-only otherwise)."),
    allow_service: bool = typer.Option(False, "--allow-service", help="Allow federated SERVICE calls."),
    timeout: Optional[float] = typer.Option(None, help="Seconds before the query is abandoned."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write results to a file."),
) -> None:
    """Query the union of all graphs plus inferred triples (SELECT, ASK, CONSTRUCT,
    DESCRIBE). Well-known prefixes (rdf, rdfs, owl, xsd, prov, skos, kg, kgr, kgg, kgv)
    need no declaration."""
    text = _read_query(query)
    c: Context = ctx.obj
    with c.open() as kg:
        result = kg.query(text, allow_update=update, allow_service=allow_service or None,
                          timeout=timeout)
        if result is None:
            console.print("update applied")
            return
        if result.form in ("CONSTRUCT", "DESCRIBE"):
            out = serialize_graph(result, fmt)
        elif fmt == "table" and output is None:
            write_table(result, kg.vocab.prefixes(), console)
            return
        elif fmt in SERIALIZERS:
            out = SERIALIZERS[fmt](result)
        else:
            raise KgchatError(f"--format {fmt!r} does not fit a {result.form} query; use one of "
                              f"{', '.join(SERIALIZERS)}")
    if output:
        output.write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")


def _read_query(arg: str) -> str:
    if arg == "-":
        return sys.stdin.read()
    try:
        is_file = "\n" not in arg and Path(arg).is_file()
    except OSError:  # e.g. a query longer than a file name may be
        is_file = False
    return Path(arg).read_text(encoding="utf-8") if is_file else arg


# -- export / reason / status --------------------------------------------------------

@app.command()
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("nquads", "--format", "-f",
                            help="nquads, trig (whole dataset); turtle, ntriples, rdfxml, jsonld (one graph)."),
    graph: Optional[str] = typer.Option(None, "--graph", "-g",
                                        help="One named graph: its IRI or a source id."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
) -> None:
    """Write the whole dataset (all named graphs, provenance and inferences) or one graph."""
    c: Context = ctx.obj
    with c.open() as kg:
        if graph is not None and not graph.startswith(("http:", "https:", "urn:")):
            record = kg.source(graph)
            if record is None:
                raise KgchatError(f"no source {graph!r}; `kgchat sources list` shows the ids")
            graph = record.graph
        if output is None:
            kg.export(sys.stdout.buffer, fmt, graph)
            sys.stdout.buffer.flush()
        else:
            with output.open("wb") as fh:
                kg.export(fh, fmt, graph)
            err.print(f"wrote {output}")


@app.command()
def reason(
    ctx: typer.Context,
    incremental: bool = typer.Option(False, help="Only bring inferences up to date (default: recompute)."),
    profile: Optional[str] = typer.Option(None, help="rdfs or owlrl (default from settings: owlrl)."),
    engine: Optional[str] = typer.Option(None, help="rules (fast, incremental) or owlrl (the owlrl package)."),
) -> None:
    """Materialise RDFS / OWL 2 RL entailments (subclass, subproperty, domain, range, inverse,
    symmetric, transitive, sameAs) into their own named graph; queries see them, and later
    imports and removals keep them current."""
    c: Context = ctx.obj
    extra = {"reason": {k: v for k, v in (("profile", profile), ("engine", engine)) if v}}
    with c.open(extra) as kg:
        with console.status("reasoning…"):
            s = kg.update_inferences() if incremental else kg.reason()
        console.print(f"{s.mode}: +{s.added} -{s.removed} inferred triples; {s.total} in "
                      f"<{kg.vocab.inferred_graph}> ({s.seconds:.2f} s)")


@app.command()
def status(ctx: typer.Context,
           as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Counts of triples, entities, sources and graphs, and the latest changes."""
    c: Context = ctx.obj
    with c.open() as kg:
        st = kg.status()
    if as_json:
        data = asdict(st)
        console.print_json(json.dumps(data, default=str))
        return
    table = Table(show_header=False)
    for label, value in (("store", f"{st.location} ({st.backend})"), ("triples", st.triples),
                         ("  asserted", st.asserted), ("  inferred", st.inferred),
                         ("  provenance", st.provenance), ("entities", st.entities),
                         ("sources", st.sources), ("named graphs", st.named_graphs),
                         ("inferences computed", st.reasoned_at or "never (run `kgchat reason`)")):
        table.add_row(label, str(value))
    console.print(table)
    if st.last_runs:
        runs = Table("run", "kind", "started", "status", "summary", title="last runs", header_style="bold")
        for run in st.last_runs:
            summary = ", ".join(f"{k} {v}" for k, v in run["summary"].items())
            runs.add_row(str(run["id"]), run["kind"], run["started_at"], run["status"], summary)
        console.print(runs)
    if st.last_changes:
        changes = Table("when", "what", "source", "detail", title="last changes", header_style="bold")
        for ch in st.last_changes:
            changes.add_row(ch.at, ch.action, ch.source_id or "", ch.detail)
        console.print(changes)


# -- sources -------------------------------------------------------------------------

@sources_app.command("list")
def sources_list(ctx: typer.Context,
                 as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every imported source with its current version, then the watched ones."""
    c: Context = ctx.obj
    with c.open() as kg:
        records, watches = kg.sources(), kg.state.watches()
    if as_json:
        console.print_json(json.dumps([asdict(r) for r in records]))
        return
    table = Table("id", "format", "triples", "updated", "uri", header_style="bold")
    for r in records:
        table.add_row(r.id, r.format, str(r.triple_count), r.updated_at, r.uri)
    console.print(table)
    if watches:
        print_watches(console, watches)


@sources_app.command("show")
def sources_show(ctx: typer.Context, source: str = typer.Argument(..., help="Source id, id prefix or URI.")) -> None:
    """One source: where it came from, its graph, hash and provenance."""
    c: Context = ctx.obj
    with c.open() as kg:
        record = kg.source(source)
        if record is None:
            raise KgchatError(f"no source {source!r}; `kgchat sources list` shows the ids")
        prov = kg.query(f"SELECT ?p ?o WHERE {{ GRAPH <{kg.vocab.provenance_graph}> "
                        f"{{ <{record.graph}> ?p ?o }} }} ORDER BY ?p")
        prefixes = kg.vocab.prefixes()
    table = Table(show_header=False)
    for key, value in asdict(record).items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)
    if prov is not None:
        console.print("[bold]provenance[/bold]")
        write_table(prov, prefixes, console)


@sources_app.command("remove")
def sources_remove(ctx: typer.Context,
                   source: List[str] = typer.Argument(..., help="Source ids, id prefixes or URIs.")) -> None:
    """Retract sources: their graphs and provenance go, inferences are updated."""
    c: Context = ctx.obj
    with c.open() as kg:
        for key in source:
            r = kg.remove_source(key)
            console.print(f"removed {r.source_id} ({r.triples} triples)")
            if r.inferred is not None:
                console.print(f"[dim]inferences ({r.inferred.mode}): +{r.inferred.added} "
                              f"-{r.inferred.removed}[/dim]")


# -- the main job --------------------------------------------------------------------

@app.command()
def demo(
    ctx: typer.Context,
    data: Path = typer.Option(Path(__file__).resolve().parent.parent / "data" / "sample",
                              help="Sample folder: kb/ is imported, docs/ ingested."),
) -> None:
    """The main job on the embedded default: import the sample data, reason, and answer
    multi-hop questions with SPARQL (uses --store, created when missing)."""
    from chatbot.demo import run_demo

    c: Context = ctx.obj
    with c.open(create=True) as kg:
        run_demo(kg, data, console)


register_ingest(app, console, err)
register_ask(app, console, err)
register_train(app, console, err)
register_refresh(app, sources_app, console, err)
register_serve(app, console, err)
register_feedback(app, console, err)


def main(argv: list[str] | None = None) -> None:
    """Entry point; exits 1 with the error's message on a :class:`KgchatError`."""
    try:
        app(args=argv, prog_name="kgchat")
    except KgchatError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
