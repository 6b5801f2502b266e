"""``<store>/refresh.lock``: one refresh at a time per store, across processes and threads.

An ``fcntl.flock`` on the file keeps other processes out; the kernel drops it when its
holder dies, so a crash leaves no stale lock. The holder writes its pid, what it is and
since when into the file, so a refused caller can say who holds it.

Within one process the lock is re-entrant for the thread that holds it (``kgchat
refresh`` takes it before opening the store, and :func:`learners.refresh.refresh` takes
it again) and refused to other threads (a server's scheduler thread against a request
asking for a refresh): flock alone would not tell them apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg.errors import BusyError
from kg.state import now_iso

LOCK_FILE = "refresh.lock"


@dataclass
class _Held:
    fd: int
    owner: int  # thread ident
    depth: int
    info: dict[str, Any]


_guard = threading.Lock()
_held: dict[str, _Held] = {}


@contextmanager
def refresh_lock(root: Path, *, wait: float = 0.0, what: str = "refresh") -> Iterator[None]:
    """Hold the store's refresh lock; :class:`BusyError` naming the holder's pid if another
    process or thread still holds it after ``wait`` seconds."""
    path = str((Path(root) / LOCK_FILE).resolve())
    _acquire(path, wait, what)
    try:
        yield
    finally:
        _release(path)


def lock_holder(root: Path) -> dict[str, Any] | None:
    """``{"pid", "what", "since"}`` of whoever holds the lock now, or None."""
    path = Path(root) / LOCK_FILE
    if not path.exists():
        return None
    with _guard:
        held = _held.get(str(path.resolve()))
        if held is not None:
            return dict(held.info)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _acquire(path: str, wait: float, what: str) -> None:
    deadline = time.monotonic() + wait
    me = threading.get_ident()
    while True:
        with _guard:
            held = _held.get(path)
            if held is not None and held.owner == me:
                held.depth += 1
                return
            if held is not None:
                holder: dict[str, Any] = {**held.info, "what": f"{held.info['what']}, another thread of "
                                                               f"this process"}
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_info(fd) or {}
                    os.close(fd)
                else:
                    info = {"pid": os.getpid(), "what": what, "since": now_iso()}
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, json.dumps(info).encode(), 0)
                    _held[path] = _Held(fd, me, 1, info)
                    return
        left = deadline - time.monotonic()
        if left <= 0:
            pid = holder.get("pid")
            who = f"pid {pid}" if pid else "a process that did not say its pid"
            detail = ", ".join(str(holder[k]) for k in ("what", "since") if holder.get(k))
            raise BusyError(f"another refresh of this store is running ({who}{': ' + detail if detail else ''}; "
                            f"lock file {path}). Wait for it to finish, or stop that process.", pid)
        time.sleep(min(0.2, left))


def _release(path: str) -> None:
    with _guard:
        held = _held[path]
        held.depth -= 1
        if held.depth:
            return
        del _held[path]
        os.ftruncate(held.fd, 0)  # no stale pid for the next reader
        os.close(held.fd)  # closing the descriptor drops the flock


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
