"""Raw bytes of one source, before a parser turns them into a :class:`Document`.

Each parser (:mod:`kg.sources.text`, :mod:`~kg.sources.html`, :mod:`~kg.sources.office`,
:mod:`~kg.sources.chat`) is a function ``Raw -> Document`` that raises
:class:`kg.errors.SourceError` naming ``raw.where`` when the bytes are unusable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from kg.sources.document import Document, Turn, content_hash


@dataclass(frozen=True)
class Raw:
    """What a loader read: the bytes, where they came from, and what they claim to be."""

    where: str       # shown in error messages: the path as given, or the URL
    uri: str         # Document.uri: file:///… (resolved) or the final URL after redirects
    data: bytes
    media_type: str
    charset: str | None = None  # from an HTTP Content-Type header; files have none
    metadata: dict[str, Any] = field(default_factory=dict)

    def document(
        self,
        text: str,
        *,
        title: str = "",
        kind: str = "document",
        turns: list[Turn] | None = None,
        **metadata: Any,
    ) -> Document:
        """The Document for ``text``; the hash covers the raw bytes, not the text."""
        return Document(
            uri=self.uri,
            text=text,
            content_hash=content_hash(self.data),
            kind=kind,
            title=title,
            media_type=self.media_type,
            turns=list(turns or []),
            metadata={**self.metadata, **metadata},
        )


Parser = Callable[[Raw], Document]
