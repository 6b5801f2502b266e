"""The chat page at ``/`` and the API docs at ``/docs`` and ``/redoc``, all served from files
inside installed packages: nothing is loaded from a CDN, so both work offline.

The page (``static/index.html``, ``app.js``, ``style.css``) talks to the same JSON API any
client uses: ``POST /chat``, ``POST /feedback``, ``GET /entities/{id}``, and ``GET /lookup``
below, which turns the entity labels an answer names into IRIs. The page never puts data
into HTML: every answer, sentence and label goes in as text. Its responses carry a
Content-Security-Policy that allows scripts from this server only, a second line of defence
should a document's text ever reach markup.
"""

from __future__ import annotations

import mimetypes
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from chatbot.server.http import State
from kg.graphindex import tokens

router = APIRouter()

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new release's page is picked up at once
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


def _asset(folder: Traversable, name: str) -> Response:
    """``name`` from ``folder`` (a package's static files), or 404; no sub-folders, no dot
    files, so a request cannot walk out of the folder."""
    if not _NAME.match(name) or not folder.joinpath(name).is_file():
        raise HTTPException(404, f"no file {name!r} here")
    suffix = name[name.rfind("."):] if "." in name else ""
    media = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(folder.joinpath(name).read_bytes(), media_type=media, headers=_PAGE_HEADERS)


def _static() -> Traversable:
    return resources.files("chatbot.server").joinpath("static")


# -- the chat page -------------------------------------------------------------------------

@router.get("/", include_in_schema=False)
def page() -> Response:
    return _asset(_static(), "index.html")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    return _asset(_static(), name)


@router.get("/lookup", tags=["graph"], summary="Entities with this label or alias")
def lookup(state: State, label: str = Query(min_length=1, max_length=500)) -> dict[str, Any]:
    """The IRIs of the entities an answer names by ``label`` (as in ``answer.entities`` and
    the evidence hops), exact label first; pass one to ``GET /entities/{id}``."""
    with state.read():
        g = state.engine.graph
        nodes = g.by_label.get(" ".join(tokens(label)), [])
        found = [{"iri": g.nodes[n], "label": g.labels[n]} for n in nodes
                 if not g.is_literal(n)]
    found.sort(key=lambda e: e["label"] != label)  # stable: the index's order otherwise
    return {"label": label, "entities": found[:20]}


# -- API docs from local files (fastapi-offline ships Swagger UI 5 and ReDoc) ----------------

def _docs_assets() -> Traversable:
    return resources.files("fastapi_offline").joinpath("static")


@router.get("/docs", include_in_schema=False)
def swagger(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    app = request.app
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API docs",
        oauth2_redirect_url=f"{root}{app.swagger_ui_oauth2_redirect_url}",
        swagger_js_url=f"{root}/static/docs/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/static/docs/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/docs/favicon.png",
        # No validator badge: it would be an image from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})})


@router.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    app = request.app
    return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                          redoc_js_url=f"{root}/static/docs/redoc.standalone.js",
                          redoc_favicon_url=f"{root}/static/docs/favicon.png", with_google_fonts=False)


@router.get("/static/docs/{name}", include_in_schema=False)
def docs_asset(name: str) -> Response:
    response = _asset(_docs_assets(), name)
    # Swagger UI's page has an inline script, so the page's CSP does not fit these files.
    del response.headers["content-security-policy"]
    response.headers["cache-control"] = "public, max-age=86400"
    return response
