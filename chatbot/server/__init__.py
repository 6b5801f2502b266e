"""The kgchat service (``kgchat serve``).

::

    state.py    ServiceState: the store, the QA engine, sessions; the readers-writer lock
    app.py      create_app(): routers, error bodies, middleware
    chat.py     /chat, /v1/chat/completions, /v1/models
    sparql.py   /sparql (SPARQL 1.1 Protocol, content negotiation)
    ops.py      /ingest, /feedback, /entities/{id}, /healthz, /metrics
    web.py      the chat page at / (static/), /lookup, offline API docs at /docs and /redoc
    http.py     shared HTTP helpers: bearer token, error statuses
    metrics.py  Prometheus counters and histogram; the request-size cap
"""

from chatbot.server.app import create_app
from chatbot.server.state import RWLock, ServerConfig, ServiceState

__all__ = ["create_app", "RWLock", "ServerConfig", "ServiceState"]
