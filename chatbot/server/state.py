"""What the service shares between requests: the open store, the QA engine, chat sessions,
and the readers-writer lock that keeps every answer on one consistent graph.

One process owns the store (an Oxigraph directory opens in one process only), so every
writer — a SPARQL update, an upload, a fact stated in chat, the refresh scheduler — goes
through :meth:`ServiceState.write_lock` in this process::

    with state.write_lock():   # waits for running answers, holds new ones back
        ingest / update ...    # leaving it re-opens the engine's indexes if the graph changed
    state.reload()             # also re-open models (after a training round swapped them)

so ``learners.refresh.refresh(store, options, write_lock=state.write_lock,
after_write=state.reload)`` fits as is. Readers are let in again only after the indexes
match the graph, whether ``reload`` is called inside ``write_lock``, after it, or not at all;
no request sees the new graph with the old indexes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from chatbot.answer import QAEngine
from chatbot.session import ChatSession
from kg.graphindex import graph_stamp
from kg.store import KnowledgeStore

if TYPE_CHECKING:
    from kg.ingest.pipeline import Ingestor

T = TypeVar("T")
_INGEST_THREAD = "kgchat-ingest"


def _on_ingest_thread() -> bool:
    return threading.current_thread().name.startswith(_INGEST_THREAD)


@dataclass(frozen=True)
class ServerConfig:
    """Resolved by ``kgchat serve`` from its flags and the environment."""

    token: str | None = None          # bearer token for writes; None = read-only service
    max_body_bytes: int = 20 * 1024 * 1024
    max_sessions: int = 1000
    model_name: str = "kgchat"        # the id /v1/models lists
    accept_feedback: bool = False     # apply every user's corrections at once, token or not


class RWLock:
    """Many readers or one writer.

    A waiting writer holds new readers back, so a refresh is not starved by a stream of
    questions. The writing thread may re-enter the writer side and passes the reader side
    freely (``reload()`` inside a refresh's ``write_lock``); a reader asking for the writer
    side is refused, because it would wait for itself.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0
        self._waiting = 0
        self._local = threading.local()

    def _held_reads(self) -> int:
        return getattr(self._local, "reads", 0)

    @contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        nested = self._writer == me or self._held_reads() > 0
        if not nested:
            with self._cond:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.reads = self._held_reads() + 1
        try:
            yield
        finally:
            self._local.reads -= 1
            if not nested:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                if self._held_reads():
                    raise RuntimeError("a reader cannot take the writer side; release the read first")
                self._waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()

    @property
    def writing(self) -> bool:
        return self._writer is not None

    @property
    def depth(self) -> int:
        """How many times the writing thread holds the writer side (0: nobody writes)."""
        return self._depth

    def held(self) -> bool:
        """Whether this thread holds either side."""
        return self._writer == threading.get_ident() or self._held_reads() > 0


class SessionStore:
    """Chat sessions by id, least recently used dropped beyond ``cap``; each has a lock so
    two requests of one session take turns."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._items: OrderedDict[str, tuple[ChatSession, threading.Lock]] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, session_id: str, make: Callable[[], ChatSession]) -> tuple[ChatSession, threading.Lock]:
        with self._mutex:
            item = self._items.get(session_id)
            if item is None:
                item = self._items[session_id] = (make(), threading.Lock())
                while len(self._items) > self.cap:
                    self._items.popitem(last=False)
            self._items.move_to_end(session_id)
            return item

    def __len__(self) -> int:
        return len(self._items)


class RecentAnswers:
    """The last answers given, by id, so feedback can name one instead of repeating it
    (``detail``: the :class:`~chatbot.answer.Answer`, whose topic and path name the facts)."""

    def __init__(self, cap: int = 2000) -> None:
        self.cap = cap
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._mutex = threading.Lock()

    def add(self, session_id: str, question: str, answer: str, detail: Any = None) -> str:
        answer_id = uuid.uuid4().hex
        with self._mutex:
            self._items[answer_id] = {"session_id": session_id, "question": question, "answer": answer,
                                      "detail": detail}
            while len(self._items) > self.cap:
                self._items.popitem(last=False)
        return answer_id

    def get(self, answer_id: str) -> dict[str, Any] | None:
        with self._mutex:
            return self._items.get(answer_id)


class ServiceState:
    """Open with :meth:`open` (loads the engine), close with :meth:`close`; the caller owns
    the store and closes it afterwards."""

    def __init__(self, store: KnowledgeStore, config: ServerConfig,
                 engine_factory: Callable[[KnowledgeStore], QAEngine]) -> None:
        self.store = store
        self.config = config
        self._make_engine = engine_factory
        self._engine: QAEngine | None = None
        self._ingestor: Ingestor | None = None
        self._ingestor_stale = False
        self.lock = RWLock()
        # The embedder's and generator's tokenizers are not thread-safe ("Already borrowed"),
        # and on CPU parallel answers would only split the same cores: answers take turns.
        self.model_lock = threading.Lock()
        self.sessions = SessionStore(config.max_sessions)
        self.answers = RecentAnswers()
        self.started = time.time()
        self._triples: tuple[float, int] | None = None  # (when counted, count)
        self.refresher: Any = None  # chatbot.server.admin.Refresher, set by `kgchat serve`
        # The ingestor's caches are SQLite connections bound to the thread that opened
        # them, so the ingestor lives on one thread of its own and every use runs there.
        self._ingest_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_INGEST_THREAD)

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> ServiceState:
        with self.lock.write():
            self._engine = self._make_engine(self.store)
        return self

    def close(self) -> None:
        """Let queued writes finish, close the ingestor on its thread, drop the engine."""
        self._ingest_thread.submit(self._close_ingestor).result()
        self._ingest_thread.shutdown()
        with self.lock.write():
            self._engine = None

    # -- the two sides of the lock -------------------------------------------------------
    def read(self) -> AbstractContextManager[None]:
        """Reader side: hold it for as long as a request looks at the graph or the engine."""
        return self.lock.read()

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Writer side: waits for running requests and holds new ones back (re-entrant).
        Leaving the outermost hold after the graph changed brings the engine's graph and
        text indexes up to date before any reader is let in."""
        with self.lock.write():
            outermost = self.lock.depth == 1
            try:
                yield
            finally:
                if outermost and self._engine is not None and \
                        graph_stamp(self.store) != self._engine.graph.stamp:
                    self.refresh_indexes()

    def reload(self) -> None:
        """After the graph or models changed behind the service's back (a refresh run, a
        SPARQL update): re-open the QA engine (graph and text indexes, scorer, generator)
        and drop the entity resolver's in-memory index, all under the writer side."""
        with self.lock.write():
            # Re-opened on its own thread at its next use: waiting for that thread here
            # could wait for a write queued there, which waits for this lock.
            self._ingestor_stale = True
            self._engine = self._make_engine(self.store)
            self.graph_changed()

    def refresh_indexes(self) -> None:
        """After a write made through this state's ingestor: the engine's graph and text
        indexes catch up (only new text is embedded); models and the ingestor stay."""
        with self.lock.write():
            self.engine.reload()
            self.graph_changed()

    def graph_changed(self) -> None:
        self._triples = None

    # -- shared pieces -------------------------------------------------------------------
    @property
    def engine(self) -> QAEngine:
        if self._engine is None:
            raise RuntimeError("the service state is not open")
        return self._engine

    @property
    def read_only(self) -> bool:
        return self.config.token is None

    def with_ingestor(self, work: Callable[[Ingestor], T]) -> T:
        """``work(ingestor)`` on the ingestor's thread, under the writer side; the ingestor
        (spaCy, the entity resolver) loads on first use. Do not call it holding the lock:
        the ingestor's thread would wait for it."""
        if self.lock.held() and not _on_ingest_thread():
            raise RuntimeError("with_ingestor() called while holding the service lock")

        def run() -> T:
            from kg.ingest import open_ingestor

            with self.write_lock():
                if self._ingestor_stale:
                    self._close_ingestor()
                if self._ingestor is None:
                    # One process: spaCy's worker processes would fork a threaded server.
                    self._ingestor = open_ingestor(self.store, n_process=1)
                return work(self._ingestor)

        return run() if _on_ingest_thread() else self._ingest_thread.submit(run).result()

    def _close_ingestor(self) -> None:
        """On the ingestor's thread only."""
        if self._ingestor is not None:
            self._ingestor.close()
        self._ingestor, self._ingestor_stale = None, False

    def new_session(self, conversation: str) -> ChatSession:
        # A fresh conversation id per session object: turn URIs (…/<conversation>/<turn>)
        # of a session that was dropped and started again must not replace earlier facts.
        return ChatSession(self.engine, conversation=f"{conversation}-{uuid.uuid4().hex[:8]}")

    def triples(self, max_age: float = 30.0) -> int:
        """Triples in the store; counted at most every ``max_age`` seconds (a full count
        scans the store) and after every write made through this state."""
        cached = self._triples
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        with self.read():
            count = self.store.backend.count()
        self._triples = (time.monotonic(), count)
        return count
