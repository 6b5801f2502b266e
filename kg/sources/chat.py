"""Chat transcripts (.json / .jsonl) → a conversation :class:`Document` with turns.

Accepted shapes::

    .jsonl   one message per line            {"role": "user", "content": "…"}
    .json    a list of messages              [{"role": "user", "content": "…"}, …]
    .json    an object with "messages"       {"id": "c1", "messages": [...]}   (OpenAI)

A message has ``role`` or ``speaker``; ``content`` or ``text`` (a string, or OpenAI's
list of ``{"type": "text", "text": …}`` parts); optionally ``id`` or ``turn`` and
``name``. ``role`` is normalised to user / assistant / system (``human`` → user,
``ai``/``bot``/``model`` → assistant, ``developer``/``tool``/``function`` → system); an
unknown ``role`` is an error, while an unknown ``speaker`` is taken as a person's name
with role user. The speaker shown is ``name``, else ``speaker``, else the role.

``Document.text`` is the contents joined by blank lines; each Turn's ``start:end`` slices
exactly its content. Messages with ``null`` or empty content (an assistant's tool call)
are skipped and counted in ``metadata["skipped_messages"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kg.errors import SourceError
from kg.sources.document import Document, Turn
from kg.sources.raw import Raw
from kg.sources.text import check_text_bytes, decode_strict

_ROLES = {
    "user": "user", "human": "user",
    "assistant": "assistant", "ai": "assistant", "bot": "assistant", "model": "assistant",
    "chatbot": "assistant",
    "system": "system", "developer": "system", "tool": "system", "function": "system",
}
_SHAPES = ('expected a list of chat messages like '
           '[{"role": "user", "content": "…"}, …] or an object {"messages": [...]}; '
           '.jsonl files hold one message object per line')
_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class _Message:
    id: str
    speaker: str
    role: str
    content: str


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _content(value: Any) -> str | None:
    """A message's text; OpenAI's list of parts keeps its text parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in value
                 if isinstance(p, str) or (isinstance(p, dict) and isinstance(p.get("text"), str))]
        return "\n".join(parts)
    raise ValueError(f"its content is {_kind(value)}, not text")


def _message(obj: Any, number: int) -> _Message | None:
    """Message ``number`` (its position, the default id); None when it has no text.

    Raises ValueError saying what is wrong with it.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"it is {_kind(obj)}, not a message object")
    role_value, speaker_value, name = obj.get("role"), obj.get("speaker"), obj.get("name")
    if role_value is None and speaker_value is None:
        raise ValueError('it has neither "role" nor "speaker"')
    for key, value in (("role", role_value), ("speaker", speaker_value), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f'its "{key}" is {_kind(value)}, not a string')
    if role_value is not None:
        role = _ROLES.get(role_value.strip().lower())
        if role is None:
            raise ValueError(f'unknown role {role_value!r} (use one of {", ".join(_ROLES)})')
    else:
        role = _ROLES.get(speaker_value.strip().lower(), "user")
    if "content" not in obj and "text" not in obj:
        raise ValueError('it has neither "content" nor "text"')
    content = _content(obj["content"] if "content" in obj else obj["text"])
    if not content:
        return None
    ident = obj.get("id", obj.get("turn"))
    if ident is not None and not isinstance(ident, (str, int)):
        raise ValueError(f'its "id" is {_kind(ident)}, not a string or number')
    speaker = (name or speaker_value or role).strip() or role
    return _Message(str(number) if ident is None else str(ident), speaker, role, content)


def _document(raw: Raw, messages: list[_Message], skipped: int, **meta: Any) -> Document:
    if not messages:
        raise SourceError(raw.where, "the transcript has no messages with text")
    pieces: list[str] = []
    turns: list[Turn] = []
    seen: set[str] = set()
    offset = 0
    for msg in messages:
        if msg.id in seen:
            raise SourceError(raw.where, f"the turn id {msg.id!r} appears twice; turn ids "
                                         "must be unique within a transcript")
        seen.add(msg.id)
        if pieces:
            pieces.append(_SEPARATOR)
            offset += len(_SEPARATOR)
        turns.append(Turn(msg.id, msg.speaker, offset, offset + len(msg.content), msg.role))
        pieces.append(msg.content)
        offset += len(msg.content)
    return raw.document("".join(pieces), kind="conversation", turns=turns,
                        title=str(meta.pop("title", "") or ""),
                        skipped_messages=skipped, **meta)


def parse_jsonl(raw: Raw) -> Document:
    check_text_bytes(raw)
    messages: list[_Message] = []
    skipped = 0
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028 or U+0085.
    for lineno, line in enumerate(decode_strict(raw).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(raw.where, f"invalid JSON: {exc.msg} at column {exc.colno}; "
                                         "each line must be one JSON message object",
                              lineno) from exc
        except RecursionError as exc:
            raise SourceError(raw.where, "JSON nested too deeply", lineno) from exc
        try:
            msg = _message(obj, len(messages) + skipped + 1)
        except ValueError as exc:
            raise SourceError(raw.where, f"not a chat message: {exc}; {_SHAPES}", lineno) from exc
        if msg is None:
            skipped += 1
        else:
            messages.append(msg)
    return _document(raw, messages, skipped)


def parse_json(raw: Raw) -> Document:
    check_text_bytes(raw)
    try:
        data = json.loads(decode_strict(raw))
    except json.JSONDecodeError as exc:
        raise SourceError(raw.where, f"invalid JSON: {exc.msg} at line {exc.lineno} column "
                                     f"{exc.colno} (character {exc.pos})", exc.lineno) from exc
    except RecursionError as exc:
        raise SourceError(raw.where, "JSON nested too deeply") from exc
    meta: dict[str, Any] = {}
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        if data.get("id") is not None:
            meta["conversation_id"] = str(data["id"])
        if isinstance(data.get("title"), str):
            meta["title"] = data["title"]
        items = data["messages"]
    elif isinstance(data, list):
        items = data
    else:
        found = (f"an object with keys {', '.join(sorted(map(str, data))[:10])}"
                 if isinstance(data, dict) else _kind(data))
        raise SourceError(raw.where, f"not a chat transcript: found {found}; {_SHAPES}")
    messages: list[_Message] = []
    skipped = 0
    for number, obj in enumerate(items, 1):
        try:
            msg = _message(obj, number)
        except ValueError as exc:
            raise SourceError(raw.where, f"message {number} is not a chat message: {exc}; "
                                         f"{_SHAPES}") from exc
        if msg is None:
            skipped += 1
        else:
            messages.append(msg)
    return _document(raw, messages, skipped, **meta)
