"""The SQLite store's read side: read-only connections, one per thread, behind a gate that a
``fork()`` takes (issue 13, third pass: reads never wait for, nor hold up, the writer)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from .. import _fork

__all__ = ["Readers", "file_uri"]

T = TypeVar("T")

_URI_ESCAPES = {"%": "%25", "?": "%3f", "#": "%23"}


def file_uri(path: str, mode: str) -> str:
    """An SQLite ``file:`` URI opening ``path`` with ``mode`` (``ro``, ``rw``): ``%``, ``?``
    and ``#`` escaped, else SQLite decodes ``%41`` (another file) or cuts the path at ``#``
    (and, with the ``?mode=`` cut off too, creates a file)."""
    return "file:" + "".join(_URI_ESCAPES.get(c, c) for c in path) + f"?mode={mode}"


class _ReadGate:
    """Any number of readers at once; :meth:`acquire` (what a fork takes, see ``_fork``) waits
    until none is inside SQLite and holds new ones off until :meth:`release`. Readers pay two
    plain lock operations (every read goes through here); the rare waits poll."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._readers = 0
        self._exclusive = False

    def __enter__(self) -> None:
        mutex = self._mutex
        mutex.acquire()
        while self._exclusive:  # a fork in progress: wait for it
            mutex.release()
            time.sleep(0.001)
            mutex.acquire()
        self._readers += 1
        mutex.release()

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            self._readers -= 1

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Hold new readers off at once, then wait for the current ones to leave (so a busy
        reader cannot starve a fork)."""
        deadline = time.monotonic() + (timeout if timeout >= 0 else 1e9)
        with self._mutex:  # one exclusive holder at a time
            while self._exclusive:
                self._mutex.release()
                if not blocking or time.monotonic() >= deadline:
                    self._mutex.acquire()
                    return False
                time.sleep(0.001)
                self._mutex.acquire()
            self._exclusive = True
        while True:
            with self._mutex:
                if not self._readers:
                    return True
            if not blocking or time.monotonic() >= deadline:
                self.release()
                return False
            time.sleep(0.0005)

    def release(self) -> None:
        with self._mutex:
            self._exclusive = False


class Readers(Generic[T]):
    """Read-only connections, one per thread, so that reads never wait for the writer's
    connection (issue 13: another tenant's ``PUT`` waited 437 ms behind a 15 MB ``GET`` that
    held the store's one connection). WAL lets them read while a write commits; each read
    sees one committed snapshot."""

    def __init__(self, path: str, timeout: float, wrap: Callable[[sqlite3.Connection], T]) -> None:
        self._path = path
        self._timeout = timeout
        self._wrap = wrap  # the store's transaction handle around a connection
        self._lock = _ReadGate()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        _fork.register(self)

    def _after_fork(self) -> None:
        """The parent's connections are the parent's: kept aside, never used nor closed."""
        _fork.abandon(self._all)
        self._all = []
        self._local = threading.local()
        self._lock = _ReadGate()

    def tx(self) -> T:
        """This thread's read-only connection, as a transaction handle; call it inside
        ``with readers._lock:`` (the gate a fork waits on)."""
        tx: T | None = getattr(self._local, "tx", None)
        if tx is None:
            # mode=rw: never create the file (one removed under the store stays gone)
            uri = file_uri(self._path, "rw")
            conn = sqlite3.connect(
                uri, timeout=self._timeout, uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=1")
            tx = self._local.tx = self._wrap(conn)
            self._all.append(conn)
        return tx

    def close(self) -> None:
        conns, self._all = self._all, []
        self._local = threading.local()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
