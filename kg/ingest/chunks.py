"""Text chunks: every paragraph of a document kept in its graph for text retrieval.

The extractor misses facts; the text does not. Each document's graph therefore also holds
its paragraphs (blank-line separated; a long one cut at sentence ends into windows of at
most ``MAX_CHARS``) as RFC 5147 fragments, so a question can still find and cite the
sentence a fact is in when no triple says it::

    <file:///doc.txt#char=0,412> a kgv:Chunk ; kgv:text "…" ; kgv:start 0 ; kgv:end 412 ;
        kgv:document <file:///doc.txt> .

Conversations are chunked per turn. Chunks live and die with the document's graph version.
"""

from __future__ import annotations

import re

from kg.sources import Document

MAX_CHARS = 800
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut at sentence ends into pieces of at most MAX_CHARS (a single longer
    sentence stays whole)."""
    out: list[tuple[int, int]] = []
    cur = start
    cuts = [start + m.end() for m in _SENTENCE_END.finditer(text, start, end)] + [end]
    last = start
    for cut in cuts:
        if cut - cur > MAX_CHARS and last > cur:
            out.append((cur, last))
            cur = last
        last = cut
    out.append((cur, end))
    return out


def chunk_spans(doc: Document) -> list[tuple[int, int]]:
    """Character spans of the document's chunks, whitespace trimmed, in order."""
    text = doc.text
    if doc.turns:
        bounds = [(t.start, t.end) for t in doc.turns]
    else:
        bounds, pos = [], 0
        for m in _PARAGRAPH.finditer(text):
            bounds.append((pos, m.start()))
            pos = m.end()
        bounds.append((pos, len(text)))
    spans: list[tuple[int, int]] = []
    for s, e in bounds:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans += _windows(text, s, e)
    return spans
