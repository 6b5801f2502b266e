"""The one error tree of kgchat.

Every error a user can cause or meet derives from :class:`KgchatError`; its message says
what went wrong *and what to do*. The CLI prints the message and exits non-zero; nothing
else is caught silently.

::

    KgchatError
    ├── ConfigError            bad kgchat.toml / environment / flag values
    │   └── ScheduleError       a watch schedule (--every / --cron) cannot be parsed
    ├── StoreError             the graph store or state.db cannot be used
    │   ├── StoreNotFoundError  the store directory does not exist (says how to create it)
    │   └── BusyError           another refresh holds the store's refresh lock (names its pid)
    ├── SourceError            an input file cannot be read or parsed (names file and line)
    ├── QueryError             a SPARQL query is malformed or not allowed
    │   ├── QueryForbiddenError  update without --update, SERVICE without --allow-service
    │   └── QueryTimeoutError    the query ran past its timeout
    ├── ReasoningError         inference could not be computed
    ├── ModelError             a generator model cannot be loaded or used (says what to pass)
    ├── FeedbackError          a correction cannot be applied (names what is missing)
    └── RunCancelled           a refresh was asked to stop (Ctrl-C, SIGTERM); finished work is kept
"""

from __future__ import annotations

from pathlib import Path


class KgchatError(Exception):
    """Base class of every kgchat error."""


class ConfigError(KgchatError):
    """Configuration is invalid."""


class ScheduleError(ConfigError):
    """A schedule such as ``--every 1h`` or ``--cron "0 * * * *"`` is not valid."""


class StoreError(KgchatError):
    """The knowledge store cannot be opened or written."""


class StoreNotFoundError(StoreError):
    """The store directory does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no kgchat store at {path}. Create one with `kgchat --store {path} init` "
            f"(or pass --create to the command)."
        )
        self.path = path


class BusyError(StoreError):
    """Another refresh holds ``<store>/refresh.lock``; ``pid`` is its process id if known."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class SourceError(KgchatError):
    """An input source could not be read or parsed.

    ``file`` and ``line`` point at the problem where known.
    """

    def __init__(self, file: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line is not None else f"{file}"
        super().__init__(f"{where}: {problem}")
        self.file = str(file)
        self.line = line
        self.problem = problem


class QueryError(KgchatError):
    """A SPARQL query or update is malformed."""


class QueryForbiddenError(QueryError):
    """A query asks for something the current settings do not allow."""


class QueryTimeoutError(QueryError):
    """A query ran longer than its timeout."""


class ReasoningError(KgchatError):
    """Inference could not be computed."""


class ModelError(KgchatError):
    """A generator model cannot be loaded, saved or run."""


class FeedbackError(KgchatError):
    """A user's correction cannot be turned into triples: the fact it corrects cannot be
    identified, the feedback item is unknown or already decided, or nothing would change."""


class RunCancelled(KgchatError):
    """A long run (a refresh, its learning round) was asked to stop; what it finished stays."""
