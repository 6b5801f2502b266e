"""``/sparql``: the SPARQL 1.1 Protocol (https://www.w3.org/TR/sparql11-protocol/).

Queries by ``GET ?query=``, a ``POST`` form (``query=`` / ``update=``) or a ``POST`` body
(``application/sparql-query`` / ``application/sparql-update``). Results follow the Accept
header; updates need the bearer token; ``SERVICE``, the timeout and the row cap follow
``[query]`` in the settings, as for ``kgchat sparql``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from chatbot.server.http import State, require_token
from chatbot.server.state import ServiceState
from kg.results import serialize_graph, to_csv, to_json, to_tsv, to_xml
from kg.sparql import QueryResult, classify

router = APIRouter(tags=["SPARQL"])

RESULT_TYPES: dict[str, Callable[[QueryResult], str]] = {
    "application/sparql-results+json": to_json,
    "application/sparql-results+xml": to_xml,
    "text/csv": to_csv,
    "text/tab-separated-values": to_tsv,
    "application/json": to_json,
    "application/xml": to_xml,
}
GRAPH_TYPES: dict[str, str] = {  # media type → kg.results.GRAPH_FORMATS key
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdfxml",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}
_DATASET_PARAMS = ("default-graph-uri", "named-graph-uri", "using-graph-uri", "using-named-graph-uri")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def negotiate(accept: str | None, offers: list[str]) -> str | None:
    """The offer the Accept header prefers (``offers[0]`` for none or ``*/*``); None if the
    client accepts none of them."""
    if not accept or not accept.strip():
        return offers[0]
    ranges = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranges.append((-q, i, media.lower()))
    for _, _, media in sorted(ranges):
        if media in ("*/*", "*"):
            return offers[0]
        if media.endswith("/*"):
            hit = next((o for o in offers if o.startswith(media[:-1])), None)
            if hit:
                return hit
        elif media in offers:
            return media
    return None


@router.get("/sparql", summary="SPARQL query (GET)")
def sparql_get(request: Request, state: State) -> Response:
    params = request.query_params
    if "update" in params:
        raise HTTPException(400, "updates are sent with POST: form field update= or "
                                 "Content-Type application/sparql-update")
    _refuse_datasets(params)
    queries = params.getlist("query")
    if len(queries) != 1:
        raise HTTPException(400, "pass exactly one query: /sparql?query=SELECT…")
    return execute(state, request, queries[0], update=False)


@router.post("/sparql", summary="SPARQL query or update (POST form or body)")
async def sparql_post(request: Request, state: State) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    _refuse_datasets(request.query_params)
    if ctype in ("application/sparql-query", "application/sparql-update"):
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, "the request body is not UTF-8 text") from None
        update = ctype == "application/sparql-update"
    elif ctype in _FORM_TYPES:
        form = await request.form()
        _refuse_datasets(form)
        fields = [(k, v) for k in ("query", "update") for v in form.getlist(k)]
        if len(fields) != 1 or not isinstance(fields[0][1], str):
            raise HTTPException(400, "send exactly one text field: query= or update=")
        name, text = fields[0]
        update = name == "update"
    else:
        raise HTTPException(415, "send application/sparql-query, application/sparql-update or an "
                                 "application/x-www-form-urlencoded form with query= or update=")
    return await run_in_threadpool(execute, state, request, text, update=update)


def _refuse_datasets(params: object) -> None:
    for name in _DATASET_PARAMS:
        if name in params:  # type: ignore[operator]
            raise HTTPException(400, f"{name} is not supported: queries see the union of all "
                                     "graphs; name graphs with GRAPH in the query instead")


def execute(state: ServiceState, request: Request, text: str, *, update: bool) -> Response:
    """Run one operation (blocking: called in the threadpool)."""
    form = classify(text)  # a QueryError (400) for text that is neither
    if update and form != "UPDATE":
        raise HTTPException(400, f"update= holds a {form} query; send it as query=")
    if not update and form == "UPDATE":
        raise HTTPException(400, "this is an update; send it with POST as update= or "
                                 "application/sparql-update")
    if form == "UPDATE":
        require_token(request, state, "a SPARQL update")
        with state.write_lock():
            state.store.query(text, allow_update=True)
            state.reload()  # the update may touch anything: indexes and resolver start afresh
        return JSONResponse({"status": "updated"})
    offers = list(RESULT_TYPES if form in ("SELECT", "ASK") else GRAPH_TYPES)
    media = negotiate(request.headers.get("accept"), offers)
    if media is None:
        raise HTTPException(406, f"a {form} result can be sent as {', '.join(offers)}; "
                                 f"the Accept header allows none of them")
    with state.read():
        result = state.store.query(text)  # SERVICE, timeout and row cap from [query]
    assert result is not None
    if form in ("SELECT", "ASK"):
        body = RESULT_TYPES[media](result)
    else:
        body = serialize_graph(result, GRAPH_TYPES[media])
    headers = {"X-Kgchat-Truncated": "true"} if result.truncated else {}
    return Response(body, media_type=f"{media}; charset=utf-8", headers=headers)
