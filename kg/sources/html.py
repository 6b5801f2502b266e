"""HTML pages → the text a reader sees.

Uses the standard library's :class:`html.parser.HTMLParser` (tolerant of broken markup,
no extra dependency). Nothing in the page is executed or fetched.

Dropped: ``<script>``, ``<style>``, ``<noscript>``, ``<template>``, ``<svg>``, ``<canvas>``,
``<iframe>``, ``<object>``, ``<select>``/``<datalist>`` (option lists), a ``<dialog>``
without ``open``, comments, and *hidden elements*: the ``hidden`` attribute,
``aria-hidden="true"``, or an inline style with ``display:none`` / ``visibility:hidden``.
(CSS in stylesheets is not evaluated: a class that hides an element is not seen.)

Block elements (``p``, ``div``, headings, list items, table rows, …) become paragraph
breaks, ``<br>`` a line break, table cells are joined with `` | ``; other whitespace is
collapsed (a no-break space becomes a plain space) except inside ``<pre>``.
``<title>`` becomes Document.title.

Bytes are decoded as a browser would: BOM, then the HTTP charset, then ``<meta charset>``,
else UTF-8; invalid bytes become U+FFFD (``metadata["invalid_bytes_replaced"]``) rather
than failing the page, because the author of a web page cannot be asked to re-save it.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from kg.errors import SourceError
from kg.sources.document import Document
from kg.sources.raw import Raw
from kg.sources.text import check_text_bytes

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe",
                   "object", "select", "datalist"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen",
                   "link", "meta", "param", "source", "track", "wbr"})
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html",
    "legend", "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "tfoot", "thead", "tr", "ul",
})
# An open element on the left is closed implicitly by a start tag on the right (the HTML
# "optional end tag" rules that matter here), so an unclosed hidden <p> or <li> does not
# swallow the rest of the page.
_IMPLIED_END = {
    "p": _BLOCK, "li": {"li"}, "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "tr": {"tr"},
    "td": {"td", "th", "tr"}, "th": {"td", "th", "tr"}, "option": {"option"},
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""",
                           re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _is_hidden(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _SKIP:
        return True
    values = {name: (value or "") for name, value in attrs}
    if tag == "dialog" and "open" not in values:
        return True
    return ("hidden" in values
            or values.get("aria-hidden", "").strip().lower() == "true"
            or bool(_HIDDEN_STYLE.search(values.get("style", ""))))


class _VisibleText(HTMLParser):
    """Collects visible text as paragraphs; see the module docstring for the rules."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.title = ""
        self._current: list[str] = []
        self._skipping: list[str] = []  # open tags inside a hidden element
        self._pre = 0
        self._in_title = False
        self._title_parts: list[str] = []
        self._cells = 0  # cells seen in the current table row

    # -- tags ------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        while self._skipping and tag in _IMPLIED_END.get(self._skipping[-1], ()):
            self._skipping.pop()
        if self._skipping:
            if tag not in _VOID:
                self._skipping.append(tag)
            return
        if _is_hidden(tag, attrs):
            if tag not in _VOID:
                self._skipping.append(tag)
            return
        if tag == "title":
            self._in_title = True
        elif tag == "br":
            self._current.append("\n")
        elif tag in ("td", "th"):
            if self._cells:
                self._current.append(" | ")
            self._cells += 1
        elif tag in _BLOCK:
            self._flush()
            if tag == "pre":
                self._pre += 1
            elif tag == "tr":
                self._cells = 0

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            # Close up to the matching open tag; an unmatched end tag is ignored, as
            # browsers do, so broken markup cannot end the hidden region early.
            if tag in self._skipping:
                while self._skipping.pop() != tag:
                    pass
            return
        if tag == "title":
            self._in_title = False
        elif tag in _BLOCK:
            self._flush()
            if tag == "pre" and self._pre:
                self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in_title:
            self._title_parts.append(data)
        elif self._pre:
            self._current.append(data)
        else:
            self._current.append(_SPACE.sub(" ", data))

    # Comments, processing instructions and declarations are never visible: the
    # HTMLParser defaults for handle_comment / handle_pi / handle_decl ignore them.

    def close(self) -> None:
        super().close()
        self._flush()
        if not self.title:
            self.title = _SPACE.sub(" ", "".join(self._title_parts)).strip()

    def _flush(self) -> None:
        text = "".join(self._current)
        self._current = []
        if self._pre:
            para = "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))
        else:
            lines = (" ".join(line.split()) for line in text.split("\n"))
            para = "\n".join(line for line in lines if line)
        if para.strip():
            self.paragraphs.append(para)


def visible_text(markup: str) -> tuple[str, str]:
    """``(text, title)`` of an HTML string: paragraphs separated by blank lines."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    return "\n\n".join(parser.paragraphs), parser.title


def _charset(raw: Raw) -> str:
    if raw.data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if raw.charset:
        return raw.charset
    match = _META_CHARSET.search(raw.data[:2048])
    return match.group(1).decode("ascii") if match else "utf-8"


def decode_html(raw: Raw) -> tuple[str, dict[str, object]]:
    """The page as a string, plus metadata saying which charset was used."""
    charset = _charset(raw)
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"  # a bogus label: browsers fall back too
    try:
        return raw.data.decode(charset), {"charset": charset}
    except UnicodeDecodeError:
        return (raw.data.decode(charset, errors="replace"),
                {"charset": charset, "invalid_bytes_replaced": True})


def parse_html(raw: Raw) -> Document:
    check_text_bytes(raw)
    markup, meta = decode_html(raw)
    text, title = visible_text(markup)
    if not text.strip():
        raise SourceError(raw.where, "no visible text in the page (only scripts, styles, "
                                     "hidden elements or markup); if the page builds its "
                                     "content with JavaScript, save the rendered page instead")
    return raw.document(text, title=title, **meta)
