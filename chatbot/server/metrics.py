"""Request metrics in the Prometheus text format, and the request-size cap.

Both are plain ASGI middleware (not ``BaseHTTPMiddleware``) so that streamed responses
and streamed uploads pass through without being buffered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Request counts by route, method and status; a latency histogram by route."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[float]] = {}   # route → bucket counts, then sum, count

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._mutex:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.latency.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges`` maps a metric name to (help, value)."""
        out = ["# HELP kgchat_http_requests_total HTTP requests by route, method and status.",
               "# TYPE kgchat_http_requests_total counter"]
        with self._mutex:
            requests = sorted(self.requests.items())
            latency = {k: list(v) for k, v in sorted(self.latency.items())}
        for (route, method, status), n in requests:
            out.append(f'kgchat_http_requests_total{{route={_q(route)},method={_q(method)},'
                       f'status="{status}"}} {n}')
        out += ["# HELP kgchat_http_request_duration_seconds Time to answer a request, by route.",
                "# TYPE kgchat_http_request_duration_seconds histogram"]
        for route, h in latency.items():
            for bound, n in zip(BUCKETS, h):
                out.append(f'kgchat_http_request_duration_seconds_bucket{{route={_q(route)},'
                           f'le="{bound:g}"}} {int(n)}')
            out.append(f'kgchat_http_request_duration_seconds_bucket{{route={_q(route)},le="+Inf"}} {int(h[-1])}')
            out.append(f"kgchat_http_request_duration_seconds_sum{{route={_q(route)}}} {h[-2]:.6f}")
            out.append(f"kgchat_http_request_duration_seconds_count{{route={_q(route)}}} {int(h[-1])}")
        for name, (help_text, value) in gauges.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(out) + "\n"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The route template, not the path: /entities/{entity_id:path} is one series.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413: at once when Content-Length says
    so, otherwise as soon as the streamed body passes the limit (uploads are never held
    whole in memory to be measured)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return (f"the request body is larger than this server accepts "
                f"({self.max_bytes / 1048576:g} MB); send less per request or raise --max-upload-mb")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps({"error": self._message()}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the handler's read: FastAPI's handlers turn it into JSON.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)
