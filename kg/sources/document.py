"""The unit the extraction pipeline works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation: who said what, where it sits in the document text."""

    id: str          # stable within the conversation, e.g. "3" or the transcript's own id
    speaker: str     # "user", "assistant", or a name from the transcript
    start: int       # character offsets into Document.text
    end: int
    role: str = "user"  # "user" turns may state facts; "assistant"/"system" turns never do


@dataclass
class Document:
    """Text ready for extraction.

    ``uri`` is where it came from (``file:///…``, ``https://…``, ``urn:kgchat:chat:<id>``);
    ``content_hash`` covers the *raw bytes* of the source, so an unchanged file is
    recognised before any parsing. ``text`` is what extraction reads (markup removed).
    """

    uri: str
    text: str
    content_hash: str
    kind: str = "document"  # "document" | "conversation"
    title: str = ""
    media_type: str = "text/plain"
    turns: list[Turn] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_conversation(self) -> bool:
        return self.kind == "conversation"


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
