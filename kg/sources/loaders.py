"""Load files, folders and URLs into :class:`Document` objects.

``discover`` turns the user's arguments into a list of sources; ``load`` reads one and
raises :class:`kg.errors.SourceError` (naming it and the problem) when it is unusable,
so ingest can report a bad file and go on with the others.

Per type (parsers live in the modules named)::

    .txt               text/plain      kg.sources.text      UTF-8 only, see there
    .md .markdown      text/markdown   kg.sources.markdown  code blocks dropped
    .html .htm         text/html       kg.sources.html      visible text only
    .pdf               application/pdf kg.sources.office    pypdf, page by page
    .docx              (Word)          kg.sources.office    python-docx
    .json .jsonl       chat transcript kg.sources.chat      conversation + turns
    http(s)://…        by Content-Type kg.sources.web       then one of the above

Decisions:

- **Size cap**: ``max_bytes`` defaults to 50,000,000 bytes (50 MB) for files and URLs.
  A larger file is refused from its size alone, before it is read, with a "too large"
  error; a file under the cap is read once into memory (a 50 MB text needs a few
  hundred MB while it is parsed). Raise ``max_bytes`` to load bigger sources.
- **Empty sources are errors** ("empty file"), as is any source that yields no text
  (only whitespace, only markup, a scanned PDF): see :mod:`kg.sources.text`.
- ``Document.uri`` is ``Path.resolve().as_uri()`` for files (symlinks resolved) and the
  final URL after redirects for URLs; ``content_hash`` covers the raw bytes;
  ``metadata`` holds ``path``, ``size`` and ``modified`` (ISO 8601, UTC) for files.
- ``load`` also accepts ``file://`` URIs, so a stored ``Document.uri`` can be reloaded.
- ``load_if_changed`` asks a URL with If-None-Match / If-Modified-Since (None on 304).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse
from urllib.request import url2pathname

from kg.errors import SourceError
from kg.sources.chat import parse_json, parse_jsonl
from kg.sources.document import Document
from kg.sources.html import parse_html
from kg.sources.markdown import parse_markdown
from kg.sources.office import DOCX_TYPE, parse_docx, parse_pdf
from kg.sources.raw import Parser, Raw
from kg.sources.text import parse_text
from kg.sources.web import fetch, fetch_if_changed

DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_TIMEOUT = 30.0

_SUFFIX_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": DOCX_TYPE,
    ".json": "application/json",
    ".jsonl": "application/jsonl",
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_SUFFIX_TYPES)

_PARSERS: dict[str, Parser] = {
    "text/plain": parse_text,
    "text/markdown": parse_markdown,
    "text/html": parse_html,
    "application/pdf": parse_pdf,
    DOCX_TYPE: parse_docx,
    "application/json": parse_json,
    "application/jsonl": parse_jsonl,
}
# Other names servers use for the same types.
_TYPE_ALIASES = {
    "application/xhtml+xml": "text/html",
    "text/x-markdown": "text/markdown",
    "application/x-pdf": "application/pdf",
    "text/json": "application/json",
    "application/x-ndjson": "application/jsonl",
    "application/x-jsonlines": "application/jsonl",
    "application/jsonlines": "application/jsonl",
}
# Content-Types that say nothing: the URL's suffix decides instead.
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(source: str) -> bool:
    """True for http(s) URLs (any case), the ones ``load`` fetches."""
    return source[:8].lower().startswith(("http://", "https://"))


def _supported() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


# -- discover ------------------------------------------------------------------------------

def discover(paths_or_urls: Sequence[str]) -> list[str]:
    """Folders → their supported files, recursively and sorted; everything else as given.

    Hidden files and folders (name starting with ".") below a given folder are skipped;
    symlinked folders are followed once, so a link loop ends. A path that does not exist,
    or a folder that cannot be listed, is kept so that ``load`` reports it. Repeats are
    dropped, first occurrence kept.
    """
    if isinstance(paths_or_urls, (str, os.PathLike)):  # one path, not a list of letters
        paths_or_urls = [os.fspath(paths_or_urls)]
    out: list[str] = []
    seen: set[str] = set()
    for item in map(str, paths_or_urls):
        found = _walk(Path(item)) if not is_url(item) and Path(item).is_dir() else [item]
        for source in found:
            if source not in seen:
                seen.add(source)
                out.append(source)
    return out


def _walk(root: Path) -> list[str]:
    files: list[Path] = []
    unreadable: list[str] = []
    visited: set[tuple[int, int]] = set()

    def on_error(exc: OSError) -> None:
        # os.walk would skip an unreadable folder silently; keep it for load() to report.
        unreadable.append(str(exc.filename or root))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as exc:  # removed while we walk
            on_error(exc)
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:  # reached again through a symlink
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath, name)
            if (not name.startswith(".") and path.suffix.lower() in _SUFFIX_TYPES
                    and path.is_file()):
                files.append(path)
    return [str(p) for p in sorted(files)] + sorted(unreadable)


# -- load ----------------------------------------------------------------------------------

def load(path_or_url: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
         timeout: float = DEFAULT_TIMEOUT) -> Document:
    """Read one file or http(s) URL into a Document; SourceError when it is unusable."""
    source = str(path_or_url)
    if is_url(source):
        return _parse_fetched(fetch(source, max_bytes=max_bytes, timeout=timeout))
    if source[:7].lower() == "file://":
        parsed = urlparse(source)
        if parsed.netloc not in ("", "localhost"):
            raise SourceError(source, f"file URI on another host ({parsed.netloc}) cannot "
                                      "be read")
        return _load_file(source, Path(url2pathname(parsed.path)), max_bytes)
    if _SCHEME.match(source):
        raise SourceError(source, "unsupported URL scheme; use http://, https:// or a path")
    return _load_file(source, Path(source), max_bytes)


def load_if_changed(url: str, *, etag: str | None, last_modified: str | None,
                    max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT) -> Document | None:
    """An http(s) URL fetched with a conditional request: None on 304 Not Modified. The
    Document's metadata carries the new ``etag`` / ``last_modified`` for the next time."""
    raw = fetch_if_changed(url, etag=etag, last_modified=last_modified, max_bytes=max_bytes,
                           timeout=timeout)
    return None if raw is None else _parse_fetched(raw)


def _load_file(where: str, path: Path, max_bytes: int) -> Document:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(where, "no such file") from None
    except OSError as exc:
        raise SourceError(where, f"cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        _check_listable(where, path)
        raise SourceError(where, "is a folder, not a file; pass folders to discover() "
                                 "to get their files")
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(where, "not a regular file (a device, pipe or socket)")
    media_type = _SUFFIX_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise SourceError(where, f"unsupported file type {path.suffix or '(no suffix)'!r}; "
                                 f"supported: {_supported()}")
    if st.st_size > max_bytes:
        raise SourceError(where, f"too large: {st.st_size} bytes, over the limit of "
                                 f"{max_bytes} bytes (raise max_bytes to load it)")
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # +1: notice a file that grew since stat()
    except OSError as exc:
        raise SourceError(where, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SourceError(where, f"too large: over the limit of {max_bytes} bytes "
                                 "(raise max_bytes to load it)")
    resolved = path.resolve()
    modified = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()
    raw = Raw(where=where, uri=resolved.as_uri(), data=data, media_type=media_type,
              metadata={"path": str(resolved), "size": len(data), "modified": modified})
    return _PARSERS[media_type](raw)


def _check_listable(where: str, path: Path) -> None:
    try:
        os.listdir(path)
    except OSError as exc:
        raise SourceError(where, f"cannot read this folder: {exc.strerror or exc}") from exc


def _parse_fetched(raw: Raw) -> Document:
    media_type = _TYPE_ALIASES.get(raw.media_type, raw.media_type)
    if media_type in _UNTYPED:
        suffix = Path(urlparse(raw.uri).path).suffix.lower()
        media_type = _SUFFIX_TYPES.get(suffix, media_type)
    parser = _PARSERS.get(media_type)
    if parser is None:
        shown = raw.media_type or "none"
        raise SourceError(raw.where, f"unsupported content type {shown!r}; supported: "
                                     f"{', '.join(sorted(_PARSERS))} (or a URL ending in "
                                     f"one of {_supported()})")
    return parser(dataclasses.replace(raw, media_type=media_type))
