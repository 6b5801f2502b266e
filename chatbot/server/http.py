"""HTTP plumbing every router shares: the state dependency, bearer-token checks and the
mapping of kgchat's errors to status codes (every error body is ``{"error": message}``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from chatbot.server.state import ServiceState
from kg.errors import (
    KgchatError,
    QueryError,
    QueryForbiddenError,
    QueryTimeoutError,
    SourceError,
)


def get_state(request: Request) -> ServiceState:
    return request.app.state.kgchat


State = Annotated[ServiceState, Depends(get_state)]  # a handler parameter: the service state


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_ok(request: Request, state: ServiceState) -> bool:
    """Whether the request carries the configured token (never true on a read-only service)."""
    given, expected = _bearer(request), state.config.token
    if given is None or expected is None:
        return False
    # Constant time: the comparison must not tell how much of a guess was right.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_token(request: Request, state: ServiceState, what: str) -> None:
    """401 without credentials, 403 with wrong ones or on a read-only service."""
    if state.config.token is None:
        raise HTTPException(403, f"{what} needs write access and this server is read-only; "
                                 "start it with --token or $KGCHAT_TOKEN to allow writes")
    if _bearer(request) is None:
        raise HTTPException(401, f"{what} needs the server's token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": 'Bearer realm="kgchat"'})
    if not token_ok(request, state):
        raise HTTPException(403, "the bearer token is not the server's token")


def status_for(exc: KgchatError) -> int:
    """The HTTP status of a kgchat error: the client's fault (4xx) or the service's (5xx)."""
    if isinstance(exc, QueryTimeoutError):
        return 503          # the server gave up; the same query may pass with a higher limit
    if isinstance(exc, QueryForbiddenError):
        return 403
    if isinstance(exc, (QueryError, SourceError)):
        return 400
    return 500
