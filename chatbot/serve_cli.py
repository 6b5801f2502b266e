"""``kgchat serve``: the HTTP service over one store, in this one process."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Optional

import typer
from rich.console import Console

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer, console: Console, err: Console) -> None:
    @app.command()
    def serve(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
        port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
        token: Optional[str] = typer.Option(
            None, "--token", help="Bearer token that allows writes (SPARQL updates, uploads, facts "
                                  "stated in chat). Prefer --token-env: a flag shows in `ps`."),
        token_env: str = typer.Option("KGCHAT_TOKEN", "--token-env",
                                      help="Environment variable holding the token."),
        generator: Optional[str] = typer.Option(None, help="As for `ask`."),
        max_upload_mb: float = typer.Option(20.0, min=0.001, help="Largest request body, in MB."),
        max_sessions: int = typer.Option(1000, min=1, help="Chat sessions kept in memory."),
        accept_feedback: bool = typer.Option(
            False, "--accept-feedback",
            help="Apply every chat user's corrections to the graph at once (POST /feedback, "
                 "replies to the bot's questions). Default: only with the token; others are "
                 "queued for `kgchat feedback apply`."),
        log_level: str = typer.Option("info", help="uvicorn's log level."),
        schedule: bool = typer.Option(True, "--schedule/--no-schedule",
                                      help="Refresh watched sources on their schedules inside the "
                                           "server (`kgchat sources add … --every 1h`)."),
        train: bool = typer.Option(True, "--train/--no-train", help="Run a learning round after each refresh."),
        pairs: int = typer.Option(3000, help="Learning round: new QA pairs."),
        steps: int = typer.Option(2000, help="Learning round: most generator steps."),
    ) -> None:
        """Serve the store over HTTP: a chat page at /, /chat, OpenAI-compatible
        /v1/chat/completions, the SPARQL 1.1 Protocol at /sparql, /ingest, /feedback,
        /entities/{id}, /healthz, /metrics, API docs at /docs, POST /refresh. Read-only
        unless a token is configured.

        Watched sources are refreshed on their schedules in this process (the store can be
        open in one process only): answers wait while the graph is written and then see
        the whole change at once; a learning round that passes its gate swaps the new
        model in."""
        import uvicorn

        from chatbot.answer import open_engine
        from chatbot.server import ServerConfig, ServiceState, create_app
        from chatbot.server.admin import Refresher
        from learners.refresh import RefreshOptions, refresh
        from learners.schedule import RefreshScheduler
        from learners.train import TrainPlan
        from kg.resolve import SentenceTransformerEmbedder

        secret = token or os.environ.get(token_env) or None
        config = ServerConfig(token=secret, max_body_bytes=int(max_upload_mb * 1024 * 1024),
                              max_sessions=max_sessions, accept_feedback=accept_feedback)
        if host not in _LOCAL_HOSTS:
            err.print(f"[yellow]listening on {host}: other machines can reach this service"
                      f"{'' if secret else ' (read-only: no token)'}[/yellow]")
        with ctx.obj.open() as kg:
            embedder = SentenceTransformerEmbedder(kg.settings.resolve.embedding_model)
            state = ServiceState(kg, config, lambda store: open_engine(store, generator=generator,
                                                                       embedder=embedder))
            with err.status("loading the graph index and models…"):
                state.open()
            cancel = threading.Event()
            options = RefreshOptions(train=train, plan=TrainPlan(pairs=pairs, generator_steps=steps),
                                     embedder=embedder, n_process=1, cancel=cancel,
                                     log=lambda line: err.print(f"refresh: {line}", markup=False, highlight=False))
            # Writes under the state's writer lock; a swapped-in model is loaded after the round.
            state.refresher = Refresher(lambda ids: refresh(
                kg, replace(options, watches=tuple(ids)), write_lock=state.write_lock,
                after_train=state.reload))
            scheduler = RefreshScheduler(kg.root, state.refresher.run,
                                         log_line=lambda line: err.print(f"schedule: {line}", markup=False,
                                                                         highlight=False)) if schedule else None
            mode = "writes need the bearer token" if secret else "read-only (no token configured)"
            console.print(f"kgchat serving {kg.root} at http://{host}:{port} — {mode}; "
                          f"chat page at /, API docs at /docs")
            try:
                if scheduler is not None:
                    scheduler.start()
                # One worker, always: the store can be open in one process only.
                uvicorn.run(create_app(state), host=host, port=port, log_level=log_level, workers=1)
            finally:
                cancel.set()  # a running refresh stops at its next source or training step
                if scheduler is not None:
                    scheduler.stop()
                state.close()
