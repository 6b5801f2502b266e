"""Markdown files → plain text, via markdown-it-py's token stream.

- Headings, paragraphs, block quotes and table rows become paragraphs (blank line
  between); list items become one line each, so every heading and item is its own
  sentence for the extractor. The first heading (``#`` preferred) becomes the title.
- Inline markup is removed: emphasis, links (their text stays), images (their alt
  text stays), inline HTML. ``inline code`` keeps its text: in prose it is usually a
  name ("the `rdflib` library").
- **Code blocks are dropped** (fenced and indented): they are not statements the
  extractor can read, and sentence splitting over code yields noise triples. Their
  number is kept in ``metadata["code_blocks_dropped"]``.
- HTML blocks are reduced to their visible text (:mod:`kg.sources.html`).
- YAML front matter (``---`` … ``---`` at the top) is dropped; its ``title:`` is used
  as the title when present.
"""

from __future__ import annotations

import re
from typing import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from kg.errors import SourceError
from kg.sources.document import Document
from kg.sources.html import visible_text
from kg.sources.raw import Raw
from kg.sources.text import check_text_bytes, decode_strict, normalise_newlines

_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FM_TITLE = re.compile(r"^title\s*:\s*(.+?)\s*$", re.MULTILINE)


def _inline_text(children: Sequence[Token]) -> str:
    parts: list[str] = []
    for tok in children:
        if tok.type in ("text", "code_inline"):
            parts.append(tok.content)
        elif tok.type == "softbreak":
            parts.append(" ")  # a wrapped line, not a new sentence
        elif tok.type == "hardbreak":
            parts.append("\n")
        elif tok.type == "image":
            parts.append(_inline_text(tok.children or []))
        # html_inline and the *_open/*_close markup tokens carry no visible text.
    return "".join(parts).strip()


def _split_front_matter(source: str) -> tuple[str, str]:
    """``(body, title)``: the text without YAML front matter, and its ``title:`` if any."""
    match = _FRONT_MATTER.match(source)
    if not match:
        return source, ""
    title = _FM_TITLE.search(match.group(1))
    return source[match.end():], (title.group(1).strip("'\"") if title else "")


def markdown_to_text(source: str) -> tuple[str, str, int]:
    """``(text, title, code_blocks_dropped)`` for a Markdown string."""
    body, title = _split_front_matter(source)
    blocks: list[tuple[str, bool]] = []  # (text, is_list_item)
    list_depth = 0
    heading_level = 0  # level of the heading being read, 0 outside headings
    title_level = 7 if not title else 0
    row: list[str] | None = None
    dropped = 0
    for tok in _MD.parse(body):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "heading_open":
            heading_level = int(tok.tag[1:])
        elif kind == "heading_close":
            heading_level = 0
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            if any(row):
                blocks.append((" | ".join(row), False))
            row = None
        elif kind in ("fence", "code_block"):
            dropped += 1
        elif kind == "html_block":
            text, _ = visible_text(tok.content)
            if text:
                blocks.append((text, False))
        elif kind == "inline":
            text = _inline_text(tok.children or [])
            if row is not None:
                row.append(text)
            elif text:
                blocks.append((text, list_depth > 0 and not heading_level))
                if heading_level and heading_level < title_level:
                    title, title_level = text, heading_level
    out: list[str] = []
    for i, (text, item) in enumerate(blocks):
        if i:
            out.append("\n" if item and blocks[i - 1][1] else "\n\n")
        out.append(text)
    return "".join(out), title, dropped


def parse_markdown(raw: Raw) -> Document:
    check_text_bytes(raw)
    source = normalise_newlines(decode_strict(raw, raw.charset or "utf-8"))
    text, title, dropped = markdown_to_text(source)
    if not text.strip():
        problem = "no text to extract once markup is removed"
        if dropped:
            problem += f" (its {dropped} code block(s) are dropped by design)"
        raise SourceError(raw.where, problem)
    return raw.document(text, title=title, code_blocks_dropped=dropped)
