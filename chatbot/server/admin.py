"""Refresh from the service: ``POST /refresh`` starts a pass now (token required), ``GET
/refresh`` says whether one runs and what the last ones did.

The server owns the store, so a refresh runs in this process: ``kgchat serve`` gives the
state a :class:`Refresher` that calls :func:`learners.refresh.refresh` with the state's
writer lock (answers wait while the graph is written, then see all of the change at once)
and reloads the models when a learning round swapped a new version in. The embedded
scheduler and this endpoint share one refresher, so two passes never overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from chatbot.server.http import State, require_token
from kg.errors import KgchatError

router = APIRouter(tags=["refresh"])


class Refresher:
    """One refresh at a time in the background: ``start`` returns at once (False when one
    already runs), ``run`` waits (the scheduler's job calls it on its own thread)."""

    def __init__(self, run: Callable[[Sequence[str]], Any]) -> None:
        self._run = run
        self._mutex = threading.Lock()
        self.last: dict[str, Any] | None = None  # the last pass's summary, or its error

    @property
    def running(self) -> bool:
        return self._mutex.locked()

    def run(self, watches: Sequence[str] = ()) -> Any:
        with self._mutex:
            try:
                report = self._run(watches)
            except KgchatError as exc:
                self.last = {"status": "failed", "error": str(exc)}
                raise
            self.last = {"status": getattr(report, "status", "ok"),
                         "seconds": getattr(report, "seconds", None),
                         **(report.summary() if hasattr(report, "summary") else {})}
            return report

    def start(self, watches: Sequence[str] = ()) -> bool:
        if self.running:
            return False

        def work() -> None:
            try:
                self.run(watches)
            except KgchatError:
                pass  # kept in self.last for GET /refresh

        threading.Thread(target=work, name="kgchat-refresh", daemon=True).start()
        return True


class RefreshRequest(BaseModel):
    watches: list[str] = Field(default_factory=list, description="Watch ids or targets; empty: every watch.")


def _refresher(state: Any) -> Refresher:
    refresher = getattr(state, "refresher", None)
    if refresher is None:
        raise HTTPException(503, "refresh is not available in this server (started without a store "
                                 "that can refresh)")
    return refresher


@router.post("/refresh", status_code=202)
def start_refresh(request: Request, state: State, body: RefreshRequest | None = None) -> dict[str, Any]:
    """Start a refresh pass of the watched sources now (needs the token)."""
    require_token(request, state, "a refresh")
    refresher = _refresher(state)
    if not refresher.start(tuple(body.watches) if body else ()):
        raise HTTPException(409, "a refresh is already running; GET /refresh shows its state")
    return {"started": True}


@router.get("/refresh")
def refresh_status(state: State) -> dict[str, Any]:
    """Whether a refresh runs now, the last pass's summary and the recent runs."""
    refresher = _refresher(state)
    with state.read():
        runs = state.store.state.recent_runs(5)
    return {"running": refresher.running, "last": refresher.last, "runs": runs}
