"""Ingestion, feedback, entity pages, health and metrics.

Uploads are kept under ``<store>/uploads/`` (a file uploaded again under the same name is
the same document: unchanged ones are skipped, changed ones replaced) so that provenance
points at a file that still exists. Feedback goes to ``<store>/feedback/feedback.jsonl``
(:class:`kg.feedback.FeedbackQueue`); a correction is written to the graph at once — a
feedback source whose triple supersedes the contradicted one — when the request carries the
token or the service was started with ``--accept-feedback``, and otherwise waits there for
``kgchat feedback apply ID``. Chat users may always *suggest*; only trusted ones *write*.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rdflib import Literal
from starlette.datastructures import UploadFile

from chatbot.answer import Answer
from chatbot.server.http import State, require_token, token_ok
from chatbot.server.state import ServiceState
from chatbot.session import answer_facts, answer_given
from kg.errors import FeedbackError
from kg.feedback import Correction, Fact, FeedbackQueue, apply_correction
from kg.graphindex import tokens
from kg.ingest.pipeline import Ingestor, IngestSummary
from kg.sources.loaders import is_url
from kg.validity import superseded
from kg.vocab import RDF, RDFS, SKOS

router = APIRouter()

UPLOADS = "uploads"
MAX_EDGES = 500


# -- ingest --------------------------------------------------------------------------------

class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(min_length=1, max_length=100)


_INGEST_BODY = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "urls": {"type": "array", "items": {"type": "string"}}}}},
    "application/json": {"schema": IngestRequest.model_json_schema()},
}}}


@router.post("/ingest", tags=["ingest"], openapi_extra=_INGEST_BODY,
             summary="Ingest uploaded documents and/or URLs (needs the token)")
async def ingest(request: Request, state: State) -> dict[str, Any]:
    require_token(request, state, "ingesting documents")  # before reading any of the body
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    urls: list[str] = []
    uploads: list[UploadFile] = []
    form = None
    if ctype == "application/json":
        try:
            urls = IngestRequest.model_validate_json(await request.body()).urls
        except ValidationError as exc:  # not JSON, or not {"urls": [...]}: 422 as FastAPI's own
            raise HTTPException(422, 'expected {"urls": ["https://…"]}: ' + exc.errors()[0]["msg"]) from None
    elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append(value)
            elif key in ("urls", "url"):
                urls += value.split()
    else:
        raise HTTPException(415, "upload files as multipart/form-data (field: files) or send "
                                 "JSON {\"urls\": [...]}")
    try:
        if not urls and not uploads:
            raise HTTPException(400, "nothing to ingest: upload files (multipart field files) or give urls")
        local = [u for u in urls if not is_url(u)]
        if local:
            # Paths on the server's disk are not the client's to read.
            raise HTTPException(400, f"only http(s) URLs are fetched; upload files instead of {local[0]!r}")
        return await run_in_threadpool(_ingest, state, uploads, urls)
    finally:
        if form is not None:
            await form.close()


def _safe_name(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name or "").name).strip(".-")
    return base[:120] or "upload"


def _ingest(state: ServiceState, uploads: list[UploadFile], urls: list[str]) -> dict[str, Any]:
    folder = state.store.root / UPLOADS
    paths: list[str] = []

    def run(ingestor: Ingestor) -> IngestSummary:
        folder.mkdir(exist_ok=True)
        for upload in uploads:
            dest = folder / _safe_name(upload.filename)
            # Copy in chunks to a temporary file and rename: no half-written document.
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out:
                    upload.file.seek(0)
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            paths.append(str(dest))
        return ingestor.ingest([*paths, *urls])  # leaving the write lock reloads the indexes

    summary = state.with_ingestor(run)
    out = {k: v for k, v in asdict(summary).items() if k != "errors"}
    out["seconds"] = round(summary.seconds, 3)
    out["errors"] = [{"item": item, "error": message} for item, message in summary.errors]
    out["stored_as"] = [Path(p).name for p in paths]
    return out


# -- feedback ------------------------------------------------------------------------------

class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    session_id: str | None = Field(None, max_length=200)
    answer_id: str | None = Field(None, max_length=64)
    question: str | None = Field(None, max_length=10_000)
    answer: str | None = Field(None, max_length=10_000)
    correct: bool
    right_answer: str | None = Field(None, max_length=10_000)
    comment: str | None = Field(None, max_length=10_000)
    speaker: str | None = Field(None, max_length=100)
    # What the answer rested on, when answer_id does not say it (the /chat answer's
    # topic_id and relations, or its evidence's last hops):
    topic: str | None = Field(None, max_length=2000, description="topic entity IRI (or label)")
    relations: list[tuple[str, int]] | None = Field(None, max_length=3)
    facts: list[Fact] | None = Field(None, max_length=50)

    @model_validator(mode="after")
    def _names_something(self) -> Feedback:
        if not self.session_id and not self.answer_id:
            raise ValueError("give session_id or answer_id")
        return self


class FeedbackOutcome(BaseModel):
    id: str
    stored: bool = True
    status: str                    # "applied" | "pending"
    source_id: str = ""            # the feedback source holding the correction (applied)
    changes: list[str] = []        # what changed in the graph, in words (applied)
    detail: str = ""


def may_apply_feedback(request: Request, state: ServiceState) -> bool:
    """Corrections are applied at once with the token or on a service started with
    --accept-feedback; otherwise they wait in the queue for `kgchat feedback apply`."""
    return state.config.accept_feedback or token_ok(request, state)


def learn_feedback(state: ServiceState, correction: Correction, *, apply_now: bool) -> FeedbackOutcome:
    """Queue ``correction``; with ``apply_now`` (and a fact it names) also write it to the
    graph under the writer lock, whose release brings the indexes up to date. Blocking;
    raises :class:`FeedbackError` (recorded as failed) when it cannot be applied."""
    queue = FeedbackQueue(state.store.root)
    queue.add(correction)
    if not correction.correct and not correction.right_answer:
        return FeedbackOutcome(id=correction.id, status="pending",
                               detail="recorded; without the right answer there is nothing to write")
    if not apply_now or not correction.identifiable():
        why = ("it waits for review (`kgchat feedback apply`)" if correction.identifiable() else
               "it names no fact in the graph, so it waits for review")
        return FeedbackOutcome(id=correction.id, status="pending", detail=why)
    try:
        with state.write_lock():
            applied = apply_correction(state.store, correction, state.engine.graph)
            state.graph_changed()
    except FeedbackError as exc:
        queue.decide(correction.id, "failed", detail=str(exc))
        raise
    queue.decide(correction.id, "applied", detail=applied.describe(), source_id=applied.source_id)
    return FeedbackOutcome(id=correction.id, status="applied", source_id=applied.source_id,
                           changes=applied.lines)


_IRI = re.compile(r"^(https?|urn):")


@router.post("/feedback", tags=["feedback"], status_code=201, response_model=FeedbackOutcome,
             summary="Say whether an answer was right (and what is)")
def feedback(body: Feedback, request: Request, state: State) -> FeedbackOutcome:
    """Name the answer by ``answer_id`` (from /chat), or give ``question`` and ``answer``
    with the facts it rested on (``topic`` + ``relations``, or ``facts``). A wrong answer's
    ``right_answer`` becomes a triple in a feedback source that supersedes the contradicted
    one; a right one is recorded as a confirmation. Applied at once with the token (or on
    a service started with --accept-feedback), otherwise queued for an operator."""
    known = state.answers.get(body.answer_id) if body.answer_id else None
    record = body.model_dump(exclude_none=True)
    given: Answer | None = known.get("detail") if known else None
    if known is not None:
        for key in ("session_id", "question", "answer"):
            record[key] = record.get(key) or known[key]
    if given is not None:
        record["question"] = given.question or record["question"]
        record["answer"] = answer_given(given)
        if "topic" not in record and "facts" not in record:
            record.update(topic=given.topic_id, relations=list(given.relations),
                          facts=[f.model_dump() for f in answer_facts(given)])
    if not record.get("question") or not record.get("answer"):
        raise HTTPException(422, "give question and answer, or the answer_id of a recent answer")
    topic = record.get("topic") or ""
    if topic and not _IRI.match(topic):
        with state.read():
            g = state.engine.graph
            nodes = g.by_label.get(" ".join(tokens(topic)), [])
        if not nodes:
            raise HTTPException(400, f"no entity labelled {topic!r} in the graph; give its IRI")
        record["topic"] = g.nodes[nodes[0]]
    correction = Correction.model_validate({**record, "speaker": body.speaker or "user"})
    try:
        return learn_feedback(state, correction, apply_now=may_apply_feedback(request, state))
    except FeedbackError as exc:
        raise HTTPException(400, str(exc)) from None


# -- entities ------------------------------------------------------------------------------

_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')
# Reification (the sentence behind a fact) points at entities too; it is not a relation.
_HIDDEN_IN = {str(RDF.subject), str(RDF.object), str(RDF.predicate)}
_SHOWN_APART = {str(RDFS.label), str(RDF.type), str(SKOS.altLabel)}


@router.get("/entities/{entity_id:path}", tags=["graph"],
            summary="An entity's neighbourhood: label, types, edges in and out")
def entity(entity_id: str, state: State) -> dict[str, Any]:
    """``entity_id``: a local name (``Tom_Hanks``) or a full IRI, URL-encoded."""
    iri = entity_id if re.match(r"^(https?|urn):", entity_id) else state.store.vocab.entity(entity_id)
    if _BAD_IRI.search(iri):
        raise HTTPException(400, f"not an IRI or entity name: {entity_id!r}")
    q = f"""SELECT DISTINCT ?dir ?p ?n ?nl WHERE {{
      {{ <{iri}> ?p ?n . BIND("out" AS ?dir) }} UNION {{ ?n ?p <{iri}> . BIND("in" AS ?dir) }}
      OPTIONAL {{ ?n rdfs:label ?nl }} }} LIMIT {MAX_EDGES * 4}"""
    with state.read():
        rows = state.store.query(q).rows  # type: ignore[union-attr]
        invalid = superseded(state.store.backend, state.store.vocab)
        preds = {str(p) for _, p, _, _ in rows}
        values = " ".join(f"<{p}>" for p in preds if not _BAD_IRI.search(p))
        plabels = {} if not values else {str(p): str(l) for p, l in state.store.query(
            f"SELECT ?p ?l WHERE {{ VALUES ?p {{ {values} }} ?p rdfs:label ?l }}").rows}  # type: ignore[union-attr]
    if not rows:
        raise HTTPException(404, f"no entity <{iri}> in the graph")
    labels: list[str] = []
    aliases: list[str] = []
    types: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"out": {}, "in": {}}
    for direction, p, n, nl in rows:
        p, d = str(p), str(direction)
        if d == "out" and p == str(RDFS.label):
            labels.append(str(n))
        elif d == "out" and p == str(SKOS.altLabel):
            aliases.append(str(n))
        elif d == "out" and p == str(RDF.type):
            types.setdefault(str(n), {"iri": str(n), "label": str(nl) if nl is not None else _local(str(n))})
        elif not (d == "in" and p in _HIDDEN_IN) and p not in _SHOWN_APART:
            # OPTIONAL gives a node either one row per label or one row without: first wins.
            label = str(nl) if nl is not None else str(n) if isinstance(n, Literal) else _local(str(n))
            spo = (f"<{iri}>", f"<{p}>", n.n3()) if d == "out" else (n.n3(), f"<{p}>", f"<{iri}>")
            edges[d].setdefault((p, str(n)), {
                "relation": p, "relation_label": plabels.get(p, _local(p)), "node": str(n),
                "label": label, "literal": isinstance(n, Literal),
                "superseded": spo in invalid})  # ended by a user's correction (kept, not used)
    return {
        "iri": iri, "label": labels[0] if labels else _local(iri), "labels": sorted(set(labels)),
        "aliases": sorted(set(aliases)), "types": list(types.values()),
        "outgoing": list(edges["out"].values())[:MAX_EDGES],
        "incoming": list(edges["in"].values())[:MAX_EDGES],
    }


def _local(iri: str) -> str:
    return re.split(r"[/#]", iri.rstrip("/#"))[-1].replace("_", " ") or iri


# -- health and metrics --------------------------------------------------------------------

@router.get("/healthz", tags=["service"], summary="Liveness: answers without touching the graph")
async def healthz(state: State) -> dict[str, Any]:
    # On the event loop, not the thread pool: it answers even when slow queries fill the pool.
    return {"status": "ok", "store": str(state.store.root), "read_only": state.read_only,
            "writing": state.lock.writing, "sessions": len(state.sessions),
            "uptime_s": round(time.time() - state.started, 1)}


@router.get("/metrics", tags=["service"], response_class=PlainTextResponse,
            summary="Prometheus metrics")
def metrics(request: Request, state: State) -> PlainTextResponse:
    text = request.app.state.metrics.render({
        "kgchat_graph_triples": ("Quads in the store (all graphs, inferences included).", state.triples()),
        "kgchat_chat_sessions": ("Chat sessions kept in memory.", len(state.sessions)),
        "kgchat_uptime_seconds": ("Seconds since the service started.", time.time() - state.started),
    })
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
