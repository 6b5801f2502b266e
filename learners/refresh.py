"""One refresh pass over the watched sources (``kgchat refresh``, the scheduler, a server).

1. **look** — :func:`kg.watch.scan` per watch: files hashed, URLs asked with a conditional
   request. Nothing is written, so a server keeps answering from the current graph.
2. **write** — inside ``write_lock()``: retractions of what disappeared, new and changed
   documents through the ingest pipeline (knowledge-base files through ``import``), then
   inferences brought up to date. ``after_write()`` follows once, if the graph changed.
3. **learn** — one :func:`learners.train.train` round with ``options.plan``: it reads the
   graph and writes only ``models/`` and ``replay/``; its new generator version becomes
   current only if it passes the evaluation gate (``after_train()`` is called then). It
   runs even when this pass changed nothing, because an earlier ``--no-train`` pass or a
   plain ``ingest`` may have left changes unlearnt; with nothing to learn it returns at once.

The pass holds ``<store>/refresh.lock`` (:mod:`learners.lock`) throughout and is one row
(kind ``refresh``) in state.db's runs table. A bad source is one failed entry naming it;
the others go on. ``options.cancel`` stops the pass between sources or training steps (an
interrupted round resumes from its checkpoint next time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kg.errors import KgchatError, RunCancelled
from kg.ingest.pipeline import Ingestor, IngestSummary
from kg.sources.loaders import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT
from kg.state import StateDB, WatchRecord, now_iso
from kg.store import KnowledgeStore
from kg.watch import Item, Scan, scan
from learners.lock import refresh_lock

if TYPE_CHECKING:  # torch comes with it: a pass without training should not pay for that
    from learners.train import TrainPlan

_ACTIONS = {"new": "added", "changed": "updated", "removed": "removed", "failed": "failed"}


@dataclass
class RefreshOptions:
    watches: tuple[str, ...] = ()        # watch ids, id prefixes or targets; () = every watch
    train: bool = True                   # run a learning round after the writes
    plan: TrainPlan | None = None        # the learning round's size (None: TrainPlan's defaults)
    reason: bool = True                  # bring inferences up to date after a change
    lock_wait: float = 0.0               # seconds to wait for another refresh; 0 = refuse at once
    fetch_timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    n_process: int | None = None         # spaCy worker processes (None: extract.n_process)
    embedder: Any = None                 # a loaded sentence embedder to reuse (None: load on demand)
    cancel: threading.Event | None = None
    log: Callable[[str], None] | None = None  # one line per step, for a progress display


@dataclass
class SourceChange:
    watch: str        # the watch's id
    name: str         # the path or URL
    action: str       # added | updated | removed | failed
    source_id: str = ""
    error: str = ""


@dataclass
class RefreshReport:
    run_id: int = 0
    started_at: str = ""
    seconds: float = 0.0
    status: str = "ok"                   # ok | partial (something failed) | cancelled | failed | interrupted
    watches: int = 0
    unchanged: int = 0                   # sources looked at and found unchanged
    changes: list[SourceChange] = field(default_factory=list)
    watch_errors: list[str] = field(default_factory=list)
    triples_added: int = 0
    triples_retracted: int = 0
    graph_changed: bool = False
    reasoning: dict[str, Any] | None = None   # mode, inferred_before, inferred, seconds
    training: dict[str, Any] | None = None    # the round's report: accepted, reason, version, …
    training_skipped: str = ""                # why no round ran, or the error that stopped it

    def of(self, action: str) -> list[SourceChange]:
        return [c for c in self.changes if c.action == action]

    @property
    def accepted(self) -> bool | None:
        """Whether a new model version became current (None: no round trained)."""
        return bool(self.training.get("accepted")) if self.training and self.training.get("steps") else None

    def summary(self) -> dict[str, Any]:
        """Flat counts for the runs table and `kgchat status`."""
        out: dict[str, Any] = {"watches": self.watches, "unchanged": self.unchanged,
                               **{a: len(self.of(a)) for a in ("added", "updated", "removed", "failed")},
                               "triples_added": self.triples_added,
                               "triples_retracted": self.triples_retracted}
        if self.reasoning:
            out["inferred"] = self.reasoning["inferred"]
        if self.training_skipped:
            out["round"] = f"skipped: {self.training_skipped}"
        elif self.training:
            t = self.training
            out["round"] = (t["reason"] if not t.get("steps") else
                            f"{'accepted ' + t['version'] if t['accepted'] else 'rejected'}: {t['reason']}")
        return out


def refresh(store: KnowledgeStore, options: RefreshOptions | None = None, *,
            write_lock: Callable[[], AbstractContextManager[Any]] | None = None,
            after_write: Callable[[], None] | None = None,
            after_train: Callable[[], None] | None = None) -> RefreshReport:
    """One pass: look at the watches, write what changed, update inferences, learn.

    ``write_lock`` is a context-manager factory held only around the phases that write
    the graph (ingest, retract, reason). ``after_write()`` is called once after them, only
    if the graph changed and before the learning round, so a server answers from the new
    graph while the round trains; ``after_train()`` is called once if the round's model
    was swapped in (``report.accepted``). Raises :class:`kg.errors.BusyError` when another
    refresh of the store is running; a cancelled pass returns with ``status == "cancelled"``.
    """
    options = options or RefreshOptions()
    say = options.log or (lambda line: None)
    with refresh_lock(store.root, wait=options.lock_wait):
        report = RefreshReport(started_at=now_iso())
        report.run_id = store.state.start_run("refresh")
        started = time.perf_counter()
        report.status = "failed"
        try:
            _run(store, options, report, say, write_lock or nullcontext, after_write)
            if report.accepted and after_train is not None:
                after_train()
        except RunCancelled:
            report.status = "cancelled"
            say("cancelled; what was finished is kept")
        except KeyboardInterrupt:
            report.status = "interrupted"
            raise
        finally:
            report.seconds = round(time.perf_counter() - started, 2)
            store.state.finish_run(report.run_id, report.status, report.summary())
    return report


def _run(store: KnowledgeStore, options: RefreshOptions, report: RefreshReport,
         say: Callable[[str], None], write_lock: Callable[[], AbstractContextManager[Any]],
         after_write: Callable[[], None] | None) -> None:
    watches = _select(store.state, options.watches)
    report.watches = len(watches)
    scans: list[Scan] = []
    for w in watches:
        _check(options)
        say(f"looking at {w.target}")
        scans.append(scan(w, store.state, max_bytes=options.max_bytes, timeout=options.fetch_timeout))
    report.watch_errors = [s.error for s in scans if s.error]
    report.unchanged = len({i.uri for s in scans for i in s.items if i.action == "unchanged"})

    outcomes: dict[str, tuple[str, str]] = {}  # uri → (action, error)
    todo = _unique(i for s in scans for i in s.items if i.action in ("new", "changed", "removed"))
    if todo:
        ingestor = _open_ingestor(store, todo, options, say)  # models load outside the write lock
        try:
            with write_lock():
                inferred_before = store.backend.count(str(store.vocab.inferred_graph))
                was_current = store.settings.reason.auto and store.state.get_meta("reasoned_at") is not None
                _write(store, ingestor, todo, options, report, outcomes, say)
                report.graph_changed = any(a != "failed" for a, _ in outcomes.values())
                if options.reason and report.graph_changed:
                    say("updating inferences")
                    s = store.update_inferences()
                    report.reasoning = {"mode": "incremental" if was_current else s.mode,
                                        "inferred_before": inferred_before, "inferred": s.total,
                                        "seconds": round(s.seconds, 2)}
        finally:
            if ingestor is not None:
                ingestor.close()
    for s in scans:
        for i in s.items:
            if i.action in ("new", "changed", "removed", "failed"):
                action, error = outcomes.get(i.uri, (_ACTIONS[i.action], i.error))
                report.changes.append(SourceChange(s.watch.id, i.name, action, i.source_id, error))
    _record(store.state, scans, report, outcomes)
    if report.graph_changed and after_write is not None:
        after_write()

    if not options.train:
        report.training_skipped = "not asked (--no-train)"
    else:
        _learn(store, options, report, say)
    failed = report.of("failed") or report.watch_errors or (options.train and report.training is None)
    report.status = "partial" if failed else "ok"


def _select(state: StateDB, keys: tuple[str, ...]) -> list[WatchRecord]:
    if not keys:
        return state.watches()
    out = []
    for key in keys:
        w = state.find_watch(key)
        if w is None:
            raise KgchatError(f"no watch {key!r}; `kgchat sources list` shows the watched sources "
                              f"and `kgchat sources add` adds one")
        out.append(w)
    return out


def _unique(items: Any) -> list[Item]:
    """One item per source, though a file may sit in two watched folders."""
    seen: dict[str, Item] = {}
    for i in items:
        seen.setdefault(i.uri, i)
    return list(seen.values())


def _check(options: RefreshOptions) -> None:
    if options.cancel is not None and options.cancel.is_set():
        raise RunCancelled("refresh cancelled")


# -- write ----------------------------------------------------------------------------------

def _open_ingestor(store: KnowledgeStore, todo: list[Item], options: RefreshOptions,
                   say: Callable[[str], None]) -> Ingestor | None:
    if not any(i.how == "ingest" for i in todo):
        return None  # knowledge-base files only: no extraction models needed
    from kg.ingest import open_ingestor

    _check(options)
    say("loading the extraction models")
    return open_ingestor(store, n_process=options.n_process)


def _write(store: KnowledgeStore, ingestor: Ingestor | None, todo: list[Item], options: RefreshOptions,
           report: RefreshReport, outcomes: dict[str, tuple[str, str]], say: Callable[[str], None]) -> None:
    """Retract, then ingest and import; each item's outcome lands in ``outcomes``."""
    # Retractions first: a renamed file (one removed, one new) then re-adds its entities.
    for item in (i for i in todo if i.action == "removed"):
        _check(options)
        say(f"retracting {item.name}")
        record = store.state.get_source(item.source_id)
        try:
            if ingestor is not None and item.how == "ingest":
                ingestor.remove(item.source_id)  # also releases its entities
            else:
                store.remove_source(item.source_id)
        except KgchatError as exc:
            outcomes[item.uri] = ("failed", f"{item.name}: {exc}")
            continue
        report.triples_retracted += record.triple_count if record else 0
        outcomes[item.uri] = ("removed", "")
    files = [i for i in todo if i.how == "ingest" and i.action != "removed" and i.document is None]
    fetched = [i for i in todo if i.document is not None]
    if ingestor is not None and files:
        _check(options)
        say(f"ingesting {len(files)} document(s)")
        _ingested(ingestor.ingest([i.name for i in files]), files, report, outcomes)
    if ingestor is not None and fetched:
        _check(options)
        say(f"ingesting {len(fetched)} page(s)")
        _ingested(ingestor.ingest_documents([i.document for i in fetched if i.document]),
                  fetched, report, outcomes)
    for item in (i for i in todo if i.how == "import" and i.action != "removed"):
        _check(options)
        say(f"importing {item.name}")
        try:
            r = store.import_file(Path(item.name))
        except KgchatError as exc:
            outcomes[item.uri] = ("failed", str(exc))
            continue
        report.triples_added += r.added
        report.triples_retracted += r.retracted
        outcomes[item.uri] = (_ACTIONS[item.action], "")


def _ingested(summary: IngestSummary, items: list[Item], report: RefreshReport,
              outcomes: dict[str, tuple[str, str]]) -> None:
    errors = dict(summary.errors)  # keyed by the path as given, or by the document's URI
    report.triples_added += summary.triples_added
    report.triples_retracted += summary.triples_retracted
    for i in items:
        error = errors.get(i.name) or errors.get(i.uri)
        outcomes[i.uri] = ("failed", error) if error else (_ACTIONS[i.action], "")


def _record(state: StateDB, scans: list[Scan], report: RefreshReport,
            outcomes: dict[str, tuple[str, str]]) -> None:
    """Each watch's last run, last change and last error; a URL's validators only once its
    content is safely stored (else a 304 next time would hide a change never stored)."""
    at = now_iso()
    for s in scans:
        mine = [c for c in report.changes if c.watch == s.watch.id]
        errors = ([s.error] if s.error else []) + [c.error or c.name for c in mine if c.action == "failed"]
        new_state = s.watch.state
        if s.watch.kind == "url" and s.items and not any(c.action == "failed" for c in mine):
            new_state = s.items[0].validators
        state.record_watch_run(s.watch.id, at=at, changed=any(c.action != "failed" for c in mine),
                               error="; ".join(errors) or None, state=new_state)


# -- learn ----------------------------------------------------------------------------------

def _learn(store: KnowledgeStore, options: RefreshOptions, report: RefreshReport,
           say: Callable[[str], None]) -> None:
    from learners.train import TrainPlan, train

    _check(options)
    say("learning round")

    def on_step(step: int, loss: float) -> None:
        _check(options)  # a cancelled round stops at a step and resumes next time

    embedder = options.embedder or _LazyEmbedder(store.settings.resolve.embedding_model)
    try:
        result = train(store, options.plan or TrainPlan(), embedder, on_stage=lambda name, total: say(name),
                       on_step=on_step)
    except RunCancelled:
        raise
    except KgchatError as exc:
        report.training_skipped = f"the learning round failed: {exc}"
        return
    report.training = {**result.generator, "scorer_pairs": result.pairs}


class _LazyEmbedder:
    """Loads the sentence embedder only if the round gets as far as the path scorer (a
    round with nothing to learn never does)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._inner: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._inner is None:
            from kg.resolve import SentenceTransformerEmbedder

            self._inner = SentenceTransformerEmbedder(self._model)
        return getattr(self._inner, name)


__all__ = ["RefreshOptions", "RefreshReport", "SourceChange", "refresh"]
