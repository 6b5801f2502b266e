"""Fetch an http(s) URL into :class:`Raw` bytes, with a size cap and a deadline.

- One opener with only the HTTP(S), redirect and proxy handlers: a redirect to
  ``file:``, ``ftp:`` or ``data:`` fails instead of reading something local.
- ``User-Agent: kgchat/0.1``; no ``Accept-Encoding`` is sent, but a gzip/deflate body
  a server sends anyway is decompressed (under the same cap).
- ``timeout`` bounds the *whole* fetch (connect, headers, body), checked after every
  network read, so a server that trickles bytes cannot hold ingest forever.
- ``max_bytes`` is checked against Content-Length first, then while reading.
- ``Raw.uri`` is the final URL after redirects; ETag, Last-Modified, the status and the
  Content-Type go into metadata (``etag``, ``last_modified``, ``http_status``,
  ``content_type``), plus ``requested_url`` when a redirect was followed.

:func:`fetch_if_changed` sends ``If-None-Match`` / ``If-Modified-Since`` from an earlier
fetch's ETag / Last-Modified and returns None on ``304 Not Modified``.

Nothing in the body is run or followed: the bytes go to the parser for their type.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
import zlib
from email.message import Message
from typing import Any

from kg.errors import SourceError
from kg.sources.raw import Raw

USER_AGENT = "kgchat/0.1"
_CHUNK = 64 * 1024


def _opener() -> urllib.request.OpenerDirector:
    # build_opener() would add file:, ftp: and data: handlers; a page must not be able
    # to redirect us to a local file.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _too_large(url: str, size: int | str, max_bytes: int) -> SourceError:
    return SourceError(url, f"too large: {size} bytes, over the limit of {max_bytes} bytes "
                            "(raise max_bytes to load it)")


def _read_body(resp: http.client.HTTPResponse, url: str, max_bytes: int,
               deadline: float, timeout: float) -> bytes:
    length = resp.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise _too_large(url, int(length), max_bytes)
    body = bytearray()
    while True:
        # read1: at most one read from the socket, so the deadline is checked often.
        chunk = resp.read1(min(_CHUNK, max_bytes + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(url, f"more than {max_bytes}", max_bytes)
        if time.monotonic() > deadline:
            raise SourceError(url, f"timed out after {timeout:g} s while downloading "
                                   f"({len(body)} bytes read)")


def _decompress(url: str, data: bytes, encoding: str, max_bytes: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise SourceError(url, f"unsupported Content-Encoding {encoding!r}")
    # wbits 32+15 reads both gzip and zlib headers; max_length keeps a bomb small.
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise SourceError(url, f"corrupt {encoding} body: {exc}") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise _too_large(url, f"more than {max_bytes} (decompressed)", max_bytes)
    return out


def _metadata(url: str, final: str, status: int, headers: Message) -> dict[str, Any]:
    meta: dict[str, Any] = {"http_status": status,
                            "content_type": headers.get("Content-Type", "")}
    if headers.get("ETag"):
        meta["etag"] = headers["ETag"]
    if headers.get("Last-Modified"):
        meta["last_modified"] = headers["Last-Modified"]
    if final != url:
        meta["requested_url"] = url
    return meta


def fetch(url: str, *, max_bytes: int, timeout: float) -> Raw:
    """GET ``url``; raise SourceError naming it for HTTP errors, failures, size and time.

    ``Raw.media_type`` is the Content-Type without parameters ("" when the server sent
    none); ``Raw.charset`` its ``charset`` parameter.
    """
    raw = _get(url, {}, max_bytes, timeout)
    if raw is None:  # _get answers None only to a conditional request
        raise SourceError(url, "HTTP 304 Not Modified to an unconditional request")
    return raw


def fetch_if_changed(url: str, *, etag: str | None, last_modified: str | None,
                     max_bytes: int, timeout: float) -> Raw | None:
    """Like :func:`fetch`, but None when the server says the resource is unchanged since
    the fetch that gave ``etag`` / ``last_modified`` (a server that sends neither is
    simply fetched again)."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return _get(url, headers, max_bytes, timeout)


def _get(url: str, extra: dict[str, str], max_bytes: int, timeout: float) -> Raw | None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **extra})
    deadline = time.monotonic() + timeout
    try:
        with _opener().open(request, timeout=timeout) as resp:
            final = resp.geturl()
            body = _read_body(resp, url, max_bytes, deadline, timeout)
            headers = resp.headers
            status = resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and extra:
            return None
        after = "" if exc.url == url else f" (at {exc.url}, after a redirect)"
        raise SourceError(url, f"HTTP {exc.code} {exc.reason}{after}") from exc
    except urllib.error.URLError as exc:
        raise SourceError(url, f"cannot fetch: {exc.reason}") from exc
    except TimeoutError as exc:
        raise SourceError(url, f"timed out after {timeout:g} s") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise SourceError(url, f"cannot fetch: {exc.__class__.__name__}: {exc}") from exc
    except ValueError as exc:  # urllib's word for a malformed URL
        raise SourceError(url, f"invalid URL: {exc}") from exc

    data = _decompress(final, body, headers.get("Content-Encoding", ""), max_bytes)
    return Raw(
        where=final,
        uri=final,
        data=data,
        media_type=headers.get_content_type() if headers.get("Content-Type") else "",
        charset=headers.get_content_charset(),
        metadata=_metadata(url, final, status, headers),
    )
