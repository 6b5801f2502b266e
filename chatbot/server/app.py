"""The FastAPI application: routers, error bodies, metrics and the request-size cap.

Every error leaves as ``{"error": message}`` with a status that says whose fault it was;
a malformed body is a 4xx, never a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatbot.server import admin, chat, ops, sparql, web
from chatbot.server.http import status_for
from chatbot.server.metrics import BodyLimit, Metrics, MetricsMiddleware
from chatbot.server.state import ServiceState
from kg.errors import KgchatError

log = logging.getLogger("kgchat.server")

DESCRIPTION = """Answers from the knowledge graph with evidence paths and sources (`/chat`,
OpenAI-compatible `/v1/chat/completions`), the SPARQL 1.1 Protocol (`/sparql`), ingestion,
feedback and entity pages, `POST /refresh`. Writes (SPARQL updates, uploads, facts stated
in chat, refreshes) need `Authorization: Bearer <token>`; without a configured token the
service is read-only. Corrections sent to `/feedback` without it wait for an operator
(`kgchat feedback apply`) unless the server runs with `--accept-feedback`."""


def create_app(state: ServiceState) -> FastAPI:
    """The app over an open :class:`ServiceState`; the caller owns and closes the state."""
    # docs_url/redoc_url off: web.router serves them from local files instead of a CDN.
    app = FastAPI(title="kgchat", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.kgchat = state
    app.state.metrics = Metrics()
    for router in (chat.router, sparql.router, ops.router, admin.router, web.router):
        app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"error": "invalid request: " + "; ".join(problems),
                             "details": jsonable_encoder(exc.errors(), exclude={"input", "ctx"})}, 422)

    @app.exception_handler(KgchatError)
    async def _kgchat_error(request: Request, exc: KgchatError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": str(exc)}, status)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal server error; the server log has the details"}, 500)

    # Added last = outermost: metrics count the 413s the cap sends, too.
    app.add_middleware(BodyLimit, max_bytes=state.config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
