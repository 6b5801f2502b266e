"""A local HTTP server for tests: pages with or without ETag / Last-Modified, answering
conditional requests with 304, and a record of the validators each request sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Page:
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = "text/plain; charset=utf-8"


class Site:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[tuple[str, str | None, str | None]] = []  # path, If-None-Match, If-Modified-Since
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                site.requests.append((self.path, inm, ims))
                page = site.pages.get(self.path)
                if page is None:
                    self.send_error(404, "Not Found")
                    return
                if (page.etag and inm == page.etag) or (
                        page.last_modified and not inm and ims == page.last_modified):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                if page.etag:
                    self.send_header("ETag", page.etag)
                if page.last_modified:
                    self.send_header("Last-Modified", page.last_modified)
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> Site:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = Site().start()
    yield s
    s.stop()
