"""Watched sources: their schedules and what changed in them, for ``kgchat refresh``.

A watch is a file, a folder (its supported files, recursively, found as ``ingest`` finds
them) or an http(s) URL, with a schedule (:func:`parse_schedule`):

- ``every <duration>``: ``30s``, ``30m``, ``1h``, ``2d``, ``1w`` or sums such as ``1h30m``;
- ``cron <expr>``: a standard 5-field crontab line (minute hour day-of-month month
  day-of-week; 0 or 7 is Sunday), in local time. When both day fields are restricted,
  both must match (APScheduler's reading; classic cron fires on either).

:func:`scan` compares a watch with what the store holds and writes nothing:

- files: the SHA-256 of their bytes against the stored source's content hash;
- URLs: a conditional GET with the ETag / Last-Modified of the last fetch (304 means
  unchanged); servers that send neither are compared by content hash;
- folders: besides their files, the documents ingested from below the folder whose
  file is gone are ``removed``. A vanished watched folder is an error, never a
  removal of everything (an unmounted disk looks the same).

A source that cannot be read is one ``failed`` item naming it; the others go on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kg.errors import ScheduleError, SourceError
from kg.importers import guess_format
from kg.ingest.pipeline import DOCUMENT_KINDS, file_uri_to_path
from kg.sources.document import Document
from kg.sources.loaders import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    SUPPORTED_SUFFIXES,
    discover,
    is_url,
    load_if_changed,
)
from kg.state import SourceRecord, StateDB, WatchRecord, now_iso
from kg.vocab import source_id_for

# -- schedules -------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Schedule:
    """Exactly one of ``every`` (seconds) and ``cron`` (a 5-field crontab expression)."""

    every: int | None = None
    cron: str | None = None

    @property
    def spec(self) -> str:
        """The stored form, read back by :func:`parse_spec`."""
        return f"every {format_duration(self.every)}" if self.every else f"cron {self.cron}"

    def trigger(self, start: datetime | None = None) -> Any:
        """The APScheduler trigger that fires on this schedule (cron: in local time);
        an interval counts from ``start`` (default: when the job is added)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.every:
            return IntervalTrigger(seconds=self.every, start_date=start)
        return CronTrigger(**_cron_fields(self.cron or ""))

    def next_after(self, moment: datetime) -> datetime:
        """The first time this schedule fires after ``moment`` (an aware datetime)."""
        if self.every:
            return moment + timedelta(seconds=self.every)
        return self.trigger().get_next_fire_time(None, moment + timedelta(seconds=1))


def parse_schedule(every: str | None = None, cron: str | None = None) -> Schedule:
    """``--every`` or ``--cron`` as the user typed them; ScheduleError says what is wrong."""
    if (every is None) == (cron is None):
        raise ScheduleError("give a schedule: --every DURATION (e.g. 30m, 1h, 2d) or "
                            "--cron \"MIN HOUR DAY MONTH WEEKDAY\" (e.g. \"0 * * * *\"), not both")
    if every is not None:
        return Schedule(every=parse_duration(every))
    text = " ".join((cron or "").split())
    _cron_fields(text)  # validates
    return Schedule(cron=text)


def parse_spec(spec: str) -> Schedule:
    """A stored ``every …`` / ``cron …`` spec back into a :class:`Schedule`."""
    kind, _, rest = spec.strip().partition(" ")
    if kind == "every":
        return parse_schedule(every=rest)
    if kind == "cron":
        return parse_schedule(cron=rest)
    raise ScheduleError(f"schedule {spec!r}: expected 'every DURATION' or 'cron EXPRESSION'")


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``1h``, ``2d``, ``1w``, ``1h30m`` → seconds (more than 0)."""
    clean = text.strip().lower()
    parts = _DURATION.findall(clean)
    if not clean or "".join(f"{n}{u}" for n, u in parts) != clean.replace(" ", ""):
        raise ScheduleError(f"--every {text!r}: expected a duration such as 30s, 30m, 1h, 2d, 1w "
                            f"or 1h30m (a number and a unit: s, m, h, d, w)")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ScheduleError(f"--every {text!r}: the interval must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def _cron_fields(expr: str) -> dict[str, str]:
    """The keyword arguments of APScheduler's CronTrigger for a standard crontab line."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"--cron {expr!r}: expected 5 fields (minute hour day-of-month month "
                            f"day-of-week, e.g. \"0 * * * *\"), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    try:
        out = {"minute": minute, "hour": hour, "day": day, "month": month,
               "day_of_week": _weekdays(weekday)}
        CronTrigger(**out)
    except ValueError as exc:
        raise ScheduleError(f"--cron {expr!r}: {exc}") from None
    return out


def _weekdays(field_: str) -> str:
    """Crontab weekdays (0 or 7 = Sunday) as day names: APScheduler 3 numbers them from
    Monday, so numbers must not reach it."""
    if field_ == "*":
        return "*"
    days: set[int] = set()
    for part in field_.split(","):
        span, _, step = part.partition("/")
        if (step and not step.isdigit()) or step == "0":
            raise ValueError(f"day-of-week step {step!r} is not a positive number")
        if span == "*":
            lo, hi = 0, 6
        elif "-" in span:
            lo, hi = (_day(s) for s in span.split("-", 1))
        else:
            lo = hi = _day(span)
            hi = 6 if step else hi
        if lo > hi:
            raise ValueError(f"day-of-week range {span!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, int(step or 1)))
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _DAYS and len(token) >= 3:
        return _DAYS.index(token[:3])
    raise ValueError(f"day of week {token!r} is not 0-7 or a day name (sun, mon, …)")


# -- targets ----------------------------------------------------------------------------

def new_watch(target: str, schedule: Schedule) -> WatchRecord:
    """A watch on what the user typed; SourceError when it cannot be watched."""
    resolved, kind = watch_target(target)
    return WatchRecord(id=source_id_for(resolved), target=resolved, kind=kind,
                       schedule=schedule.spec, added_at=now_iso())


def watch_target(text: str) -> tuple[str, str]:
    """(target, kind): an http(s) URL as given, or an absolute path (file or folder)."""
    if is_url(text):
        if not urlparse(text).netloc:
            raise SourceError(text, "not a valid URL (no host); write it as https://host/path")
        return text, "url"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise SourceError(text, "unsupported URL scheme; watch an http(s) URL, a file or a folder")
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(text, "no such file or folder")
    path = path.resolve()
    if path.is_dir():
        return str(path), "folder"
    if not path.is_file():
        raise SourceError(text, "not a regular file or folder")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        guess_format(path)  # a knowledge-base file (imported, not ingested), or SourceError
    return str(path), "file"


# -- scan -------------------------------------------------------------------------------

@dataclass
class Item:
    """One source a look at a watch found."""

    name: str                 # the path or URL, as shown to the user
    uri: str                  # the source's URI: file:///… or the final URL
    action: str               # new | changed | unchanged | removed | failed
    how: str = "ingest"       # ingest (documents) | import (RDF / delimited knowledge-base files)
    error: str = ""
    document: Document | None = None          # a URL's fetched text, ready to ingest
    validators: dict[str, str] = field(default_factory=dict)  # a URL's ETag / Last-Modified

    @property
    def source_id(self) -> str:
        return source_id_for(self.uri)


@dataclass
class Scan:
    watch: WatchRecord
    items: list[Item] = field(default_factory=list)
    error: str = ""           # the watch as a whole could not be looked at

    def changed(self) -> list[Item]:
        return [i for i in self.items if i.action in ("new", "changed", "removed")]


def scan(watch: WatchRecord, state: StateDB, *, max_bytes: int = DEFAULT_MAX_BYTES,
         timeout: float = DEFAULT_TIMEOUT) -> Scan:
    """What changed in ``watch`` since the store last took it in (writes nothing)."""
    out = Scan(watch)
    if watch.kind == "url":
        out.items.append(_url_item(watch, state, max_bytes, timeout))
    elif watch.kind == "file":
        out.items.append(_file_item(Path(watch.target), state))
    elif not Path(watch.target).is_dir():
        out.error = (f"{watch.target}: the watched folder is gone; nothing was retracted "
                     f"(`kgchat sources unwatch {watch.id}` stops watching it)")
    else:
        files = discover([watch.target])
        out.items.extend(_file_item(Path(f), state) for f in files)
        out.items.extend(_gone_below(watch.target, {i.uri for i in out.items}, state))
    return out


def _file_item(path: Path, state: StateDB) -> Item:
    uri = path.resolve().as_uri()
    record = state.get_source(source_id_for(uri))
    how = _how(path, record)
    try:
        with path.open("rb") as fh:
            digest = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        if record is not None:
            return Item(str(path), uri, "removed", how)
        return Item(str(path), uri, "failed", how, error=f"{path}: no such file")
    except OSError as exc:
        return Item(str(path), uri, "failed", how, error=f"{path}: cannot read: {exc.strerror or exc}")
    if record is None:
        return Item(str(path), uri, "new", how)
    return Item(str(path), uri, "unchanged" if record.content_hash == digest else "changed", how)


def _how(path: Path, record: SourceRecord | None) -> str:
    if record is not None:
        return "import" if record.kind == "file" else "ingest"  # as it came in the first time
    return "ingest" if path.suffix.lower() in SUPPORTED_SUFFIXES else "import"


def _gone_below(folder: str, present: set[str], state: StateDB) -> list[Item]:
    """Documents ingested from below ``folder`` whose file no longer exists."""
    prefix = Path(folder).as_uri().rstrip("/") + "/"
    gone = []
    for r in state.sources():
        if (r.kind in DOCUMENT_KINDS and r.uri.startswith(prefix) and r.uri not in present
                and not file_uri_to_path(r.uri).exists()):
            gone.append(Item(str(file_uri_to_path(r.uri)), r.uri, "removed"))
    return gone


def _url_item(watch: WatchRecord, state: StateDB, max_bytes: int, timeout: float) -> Item:
    last = watch.state
    uri = last.get("uri", watch.target)
    held = state.get_source(source_id_for(uri)) is not None
    try:
        # Validators only help while the store still holds what they describe.
        doc = load_if_changed(watch.target, etag=last.get("etag") if held else None,
                              last_modified=last.get("last_modified") if held else None,
                              max_bytes=max_bytes, timeout=timeout)
    except SourceError as exc:
        return Item(watch.target, uri, "failed", error=str(exc))
    if doc is None:
        return Item(watch.target, uri, "unchanged", validators=dict(last))
    validators = {"uri": doc.uri, **{k: str(doc.metadata[k]) for k in ("etag", "last_modified")
                                     if doc.metadata.get(k)}}
    record = state.get_source(source_id_for(doc.uri))
    action = ("new" if record is None else
              "unchanged" if record.content_hash == doc.content_hash else "changed")
    return Item(watch.target, doc.uri, action, document=doc if action != "unchanged" else None,
                validators=validators)
