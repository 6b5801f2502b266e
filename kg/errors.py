"""The one error tree of kgchat.

Every error a user can cause or meet derives from :class:`KgchatError`; its message says
what went wrong *and what to do*. The CLI prints the message and exits non-zero; nothing
else is caught silently.

::

    KgchatError
    ├── ConfigError            bad kgchat.toml / environment / flag values
    ├── StoreError             the graph store or state.db cannot be used
    │   └── StoreNotFoundError  the store directory does not exist (says how to create it)
    ├── SourceError            an input file cannot be read or parsed (names file and line)
    ├── QueryError             a SPARQL query is malformed or not allowed
    │   ├── QueryForbiddenError  update without --update, SERVICE without --allow-service
    │   └── QueryTimeoutError    the query ran past its timeout
    ├── ReasoningError         inference could not be computed
    └── ModelError             a generator model cannot be loaded or used (says what to pass)
"""

from __future__ import annotations

from pathlib import Path


class KgchatError(Exception):
    """Base class of every kgchat error."""


class ConfigError(KgchatError):
    """Configuration is invalid."""


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
