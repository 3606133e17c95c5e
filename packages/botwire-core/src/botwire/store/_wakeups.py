"""Waiting for a namespace's changes without a thread or a poll per waiter
(:class:`~botwire.store.SupportsWakeups`).

A waiting ``changes`` used to poll on its own: on SQLite each waiter read ``data_version``
every 10 ms, and ``AsyncMemory`` gave each waiting watch a thread. Measured, 300 async watches
idle on embedded SQLite held 256 threads (the rest waited their turn) and 87% of a core. Now a
waiter registers a ``wake`` callable and sleeps: on SQLite, :class:`VersionPoller` (one thread
per store, while anyone waits) reads ``data_version`` every ``poll`` s and, when it moved, the
high-water version of each watched namespace in one snapshot, and calls the wakes of those that
moved; ``PostgresStore``'s listener calls them on notifications
(``botwire_server.storage._pg_watch``). :func:`wait_for_change` is the waiting loop of a sync
call, ``ThreadedAsyncStore.changes`` the one of an async call: register *before* the first
read and clear the signal before each read, so a commit after a read always wakes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .. import _fork
from .._types import Changes

__all__ = ["VersionPoller", "Waiters", "Wakeup", "resume", "wait_for_change"]

Wake = Callable[[], object]


class Wakeup:
    """One waiter's registration (what ``wakeup`` returns): ``interval()`` is the longest the
    waiter may sleep before it re-reads anyway; ``cancel()`` ends the registration.

    Example::

        handle = store.wakeup("ns", event.set)
        try:
            event.wait(handle.interval())
        finally:
            handle.cancel()
    """

    __slots__ = ("cancel", "interval")

    def __init__(self, cancel: Callable[[], None], interval: Callable[[], float]) -> None:
        self.cancel = cancel
        self.interval = interval


class Waiters:
    """The wake callables of waiting calls, per namespace, guarded by their owner's ``lock``
    (a poller's, a listener's); each registration is a :class:`Wakeup` whose interval is the
    owner's ``interval()``. ``on_empty(namespace)`` runs, under the lock, when a namespace's
    last waiter leaves.

    Example::

        waiters = Waiters(lock, lambda: 1.0)
        handle = waiters.add("ns", event.set)
        waiters.wake(["ns"])  # event.set()
    """

    def __init__(
        self,
        lock: threading.Lock,
        interval: Callable[[], float],
        on_empty: Callable[[str], object] = lambda namespace: None,
    ) -> None:
        self._lock, self._interval, self._on_empty = lock, interval, on_empty
        self._by_ns: dict[str, dict[object, Wake]] = {}  # namespace -> registration -> wake

    def __bool__(self) -> bool:
        return bool(self._by_ns)

    def names(self) -> list[str]:
        """The namespaces waited on (call with the lock held)."""
        return list(self._by_ns)

    def add(self, namespace: str, wake: Wake) -> Wakeup:
        key = object()
        with self._lock:
            self._by_ns.setdefault(namespace, {})[key] = wake

        def cancel() -> None:
            with self._lock:
                wakes = self._by_ns.get(namespace)
                if wakes is not None:
                    wakes.pop(key, None)
                    if not wakes:
                        del self._by_ns[namespace]
                        self._on_empty(namespace)

        return Wakeup(cancel, self._interval)

    def wake(self, names: list[str] | None = None) -> None:
        """Call the wakes of ``names`` (every namespace: ``None``), outside the lock."""
        with self._lock:
            by_ns = self._by_ns
            wanted = list(by_ns) if names is None else names
            wakes = [w for ns in wanted for w in by_ns.get(ns, {}).values()]
        for wake in wakes:
            wake()


def wait_for_change(
    read: Callable[[int], Changes], register: Callable[[Wake], Wakeup], deadline: float, after: int
) -> Changes:
    """A sync waiting ``changes``: ``read(after)`` until it finds entries or ``deadline``
    (``time.monotonic()``) passes, sleeping between reads until woken or the registration's
    interval ends. An empty read moves ``after`` to the version it saw (:func:`resume`)."""
    event = threading.Event()
    handle = register(event.set)
    try:
        while True:
            event.clear()
            found = read(after)
            left = deadline - time.monotonic()
            if found.entries or left <= 0:
                return found
            after = resume(after, found)
            event.wait(min(handle.interval(), left))
    finally:
        handle.cancel()


def resume(after: int, found: Changes) -> int:
    """Where a wait reads from after an empty read: the version that read saw, as nothing
    under the prefix changed up to it. Read again from the caller's ``after``, every wake of
    the namespace would scan all it wrote since (a hostile waiter's old ``after`` and a prefix
    that matches nothing made each write re-read the whole namespace, per waiter)."""
    return after if found.entries or found.more else max(after, found.version)


class VersionPoller:
    """While anyone waits, one thread reads ``version()`` every ``poll`` s; when it moved (a
    commit by any connection to the store), ``highs(namespaces)`` of the watched namespaces,
    and calls the wakes of those whose high-water version moved (a namespace seen for the first
    time wakes once: its waiter re-reads). A failed read wakes everyone: their reads report it.

    Example::

        poller = VersionPoller(store.data_version, store.high_waters, poll=0.01, backstop=1.0)
        handle = poller.add("ns", event.set)
    """

    def __init__(
        self,
        version: Callable[[], int],
        highs: Callable[[list[str]], dict[str, int]],
        *,
        poll: float,
        backstop: float,
    ) -> None:
        self._version, self._highs = version, highs
        self._poll, self._backstop = poll, backstop
        self._seen = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._after_fork()  # the lock, the waiters and the high-water versions seen
        _fork.register(self)

    def add(self, namespace: str, wake: Wake) -> Wakeup:
        """Call ``wake`` whenever ``namespace`` may have changed, until the handle's cancel."""
        handle = self._waiters.add(namespace, wake)
        with self._lock:
            if self._thread is None and not self._closed:
                # read here, before the caller's first read: a commit between the two is seen
                self._seen = self._version()
                self._thread = threading.Thread(
                    target=self._run, name="botwire-watch-poll", daemon=True
                )
                self._thread.start()
        return handle

    def _run(self) -> None:
        while True:
            time.sleep(self._poll)
            try:
                version: int | None = self._version()
            except Exception:  # the waiters' own reads report the store's failure
                version = None
            with self._lock:  # after the read: a waiter added before it is in this round
                if not self._waiters or self._closed:
                    self._thread = None
                    return
                if version is not None and version == self._seen:
                    continue
                self._seen = version if version is not None else self._seen
                names = self._waiters.names()
            self._waiters.wake(names if version is None else self._moved(names))

    def _moved(self, names: list[str]) -> list[str]:
        try:
            highs = self._highs(names)
        except Exception:
            return names
        moved = []
        with self._lock:
            for ns in names:
                high = highs.get(ns, 0)
                if self._high.get(ns) != high:
                    self._high[ns] = high
                    moved.append(ns)
        return moved

    def close(self) -> None:
        """Stop polling and wake every waiter (it re-reads, and fails on a closed store)."""
        with self._lock:
            self._closed = True
        self._waiters.wake()

    def _after_fork(self) -> None:
        # (also the start) the parent's thread and waiters are not in a forked child
        self._lock = threading.Lock()
        self._thread = None
        self._high: dict[str, int] = {}
        self._waiters = Waiters(
            self._lock, lambda: self._backstop, lambda ns: self._high.pop(ns, None)
        )
