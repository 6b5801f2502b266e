"""``/chat`` and the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``.

Both go through :func:`converse`: a question is answered from the graph (evidence paths
and sources included); a statement is stored as conversation knowledge, as `kgchat chat`
does, when the request carries the server's token (a write like any other). When the
answer is unsure the bot asks back, and the session's next non-question is the reply,
learned as feedback (:func:`chatbot.server.ops.learn_feedback`: applied at once with the
token or ``--accept-feedback``, queued for review otherwise).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from chatbot.answer import Answer
from chatbot.server.http import State, token_ok
from chatbot.server.ops import FeedbackOutcome, learn_feedback, may_apply_feedback
from chatbot.server.state import ServiceState
from chatbot.session import ChatSession, is_question
from kg.errors import FeedbackError
from kg.feedback import Correction, FeedbackQueue

router = APIRouter(tags=["chat"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    session_id: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=10_000)
    speaker: str = Field("user", min_length=1, max_length=100)


class ChatReply(BaseModel):
    session_id: str
    answer_id: str = ""            # name it in POST /feedback
    kind: Literal["answer", "statement", "feedback"]
    """answer: to a question; statement: facts stated; feedback: the reply to a question
    the bot asked back (see ``awaiting_reply``), learned as a correction or confirmation."""
    text: str                      # the answer sentence, or the acknowledgement of a statement
    stored: bool = False           # a statement whose facts were added to the graph
    answer: Answer | None = None   # status, entities, evidence (with the triples' IRIs), sources, …
    awaiting_reply: bool = False
    """The bot was unsure and asked back ("is it X? If not, what is it?"): the session's
    next message that is not a question is taken as the reply."""
    feedback: FeedbackOutcome | None = None  # what the reply to that question did


def converse(state: ServiceState, session: ChatSession, lock: threading.Lock, session_id: str,
             text: str, *, may_write: bool, may_learn: bool = False) -> ChatReply:
    """One turn of ``session`` (blocking: run it in the threadpool). ``may_learn``: a
    reply to a question the bot asked is applied at once, not queued for review."""
    answer: Answer | None = None
    with lock:
        if session.awaiting(text):
            session.turns += 1
            taken = session.take_reply(text)
            if isinstance(taken, str):
                reply = ChatReply(session_id=session_id, kind="feedback", text=taken,
                                  awaiting_reply=session.pending is not None)
            else:
                reply = _learn_reply(state, session, session_id, taken,
                                     may_write=may_write, may_learn=may_learn)
        elif is_question(text):
            with state.read(), state.model_lock:
                session.engine = state.engine  # the engine may have been re-opened since
                answer = session.turn(text)
            assert isinstance(answer, Answer)
            reply = ChatReply(session_id=session_id, kind="answer", text=answer.answer, answer=answer,
                              awaiting_reply=answer.unsure)
        elif not may_write:
            session.turns += 1
            why = ("this server is read-only" if state.read_only else
                   "storing facts needs the server's token (Authorization: Bearer …)")
            reply = ChatReply(session_id=session_id, kind="statement",
                              text=f"Noted, but not stored: {why}.")
        else:
            def learn(ingestor: object) -> tuple[str, bool]:
                session.engine, session.ingestor = state.engine, ingestor
                before = session.engine.graph.stamp
                said = session.turn(text)  # stores the turn's facts and reloads the engine
                stored = session.engine.graph.stamp != before
                if stored:
                    state.graph_changed()
                return str(said), stored

            said, stored = state.with_ingestor(learn)
            reply = ChatReply(session_id=session_id, kind="statement", text=said, stored=stored)
    reply.answer_id = state.answers.add(session_id, text, reply.text, answer)
    return reply


def _learn_reply(state: ServiceState, session: ChatSession, session_id: str, taken: Correction, *,
                 may_write: bool, may_learn: bool) -> ChatReply:
    """The reply to a question the bot asked, learned: a correction of the fact it named, or
    (for a question nothing answered) the fact the reply states, stored as a chat turn."""
    if not taken.identifiable() and taken.statements and (may_write or may_learn):
        def learn(ingestor: object) -> str | None:
            session.engine, session.ingestor = state.engine, ingestor
            said = session.learn_statements(taken)
            if said:
                state.graph_changed()
            return said

        said = state.with_ingestor(learn)
        if said:
            queue = FeedbackQueue(state.store.root)
            queue.add(taken)
            queue.decide(taken.id, "applied", detail=said)
            return ChatReply(session_id=session_id, kind="feedback", text=said, stored=True,
                             feedback=FeedbackOutcome(id=taken.id, status="applied", changes=[said]))
    try:
        outcome = learn_feedback(state, taken, apply_now=may_learn)
    except FeedbackError as exc:
        return ChatReply(session_id=session_id, kind="feedback", text=f"Thanks, but I could not learn that: {exc}")
    said = ("Thanks — learned: " + "; ".join(outcome.changes) + "." if outcome.status == "applied"
            else f"Thanks — noted; {outcome.detail}.")
    return ChatReply(session_id=session_id, kind="feedback", text=said,
                     stored=outcome.status == "applied", feedback=outcome)


@router.post("/chat", response_model=ChatReply, summary="Ask a question or state a fact")
def chat(body: ChatRequest, request: Request, state: State) -> ChatReply:
    session, lock = state.sessions.get(body.session_id, lambda: state.new_session(body.session_id))
    session.speaker = body.speaker
    return converse(state, session, lock, body.session_id, body.message,
                    may_write=token_ok(request, state), may_learn=may_apply_feedback(request, state))


# -- OpenAI-compatible ---------------------------------------------------------------------

class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class OpenAIRequest(BaseModel):
    # temperature, max_tokens, … are accepted and ignored: the answer comes from the graph
    model_config = ConfigDict(extra="allow")
    model: str = "kgchat"
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(None, max_length=200)


def _text(message: OpenAIMessage) -> str:
    if isinstance(message.content, list):
        return " ".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return message.content or ""


@router.get("/v1/models", summary="OpenAI-compatible model list")
def models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": state.config.model_name, "object": "model",
                                        "created": int(state.started), "owned_by": "kgchat"}]}


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat completion",
             response_model=None)
def completions(body: OpenAIRequest, request: Request,
                state: State) -> dict[str, Any] | StreamingResponse:
    """The last user message is answered; ``user`` keeps a session (follow-up questions),
    otherwise each request stands alone. Evidence and sources come in the extra field
    ``kgchat``."""
    text = next((_text(m).strip() for m in reversed(body.messages) if m.role == "user"), "")
    if not text:
        raise HTTPException(400, "no user message with text to answer")
    if len(text) > 10_000:
        raise HTTPException(400, "the user message is longer than 10,000 characters")
    if body.user:
        sid = f"openai:{body.user}"
        session, lock = state.sessions.get(sid, lambda: state.new_session(sid))
    else:
        sid = f"openai:{uuid.uuid4().hex[:12]}"
        session, lock = state.new_session(sid), threading.Lock()
    reply = converse(state, session, lock, sid, text, may_write=token_ok(request, state),
                     may_learn=may_apply_feedback(request, state))
    extra = reply.model_dump(mode="json")
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return StreamingResponse(_chunks(cid, created, state.config.model_name, reply.text, extra),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    prompt, completion = len(text.split()), len(reply.text.split())  # words, not model tokens
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": state.config.model_name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
        "kgchat": extra,
    }


def _chunks(cid: str, created: int, model: str, text: str, extra: dict[str, Any]) -> Iterator[str]:
    """Server-sent events of chat.completion.chunk objects, then ``[DONE]``. The answer is
    complete before the first event (it is grounded as a whole); it is sent word by word."""
    def event(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                 **more}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in re.findall(r"\s*\S+", text):
        yield event({"content": piece})
    yield event({}, "stop", kgchat=extra)
    yield "data: [DONE]\n\n"
