"""The embedded store's change feed (issue 18, watch): ``changes`` with a cheap wait across
processes sharing the file, ``data_version``, and the pruning of old tombstones; a mixin of
:class:`~botwire.store.SQLiteStore` (the engine's side is ``_sqlwatch``). Waiting calls sleep
until one poller per store (``_wakeups.VersionPoller``, a thread while anyone waits) sees
their namespace move, instead of each polling ``data_version`` itself."""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from .._types import Changes
from ._sqlwatch import PRUNE_BATCH, check_changes_args
from ._wakeups import VersionPoller, Wake, Wakeup, wait_for_change

if TYPE_CHECKING:
    from ._readers import Readers
    from ._sql import Engine
    from ._sqlitefile import SQLiteTx

__all__ = ["WATCH_BACKSTOP", "WATCH_POLL", "SQLiteWatch"]

#: How often the poller looks for any connection's commit (``data_version``) while anyone waits
WATCH_POLL = 0.01
#: The longest a waiting ``changes`` sleeps before it re-reads anyway
WATCH_BACKSTOP = 5.0


class SQLiteWatch:
    """``changes``, ``data_version`` and ``prune_tombstones`` of :class:`SQLiteStore`."""

    if TYPE_CHECKING:
        path: str
        engine: Engine
        clock: Any
        _busy_timeout: float
        _conn: sqlite3.Connection
        _readers: Readers[SQLiteTx] | None
        _signal: sqlite3.Connection | None
        _signal_lock: threading.Lock
        _lock: threading.RLock  # the writer connection's
        retention_changes: int  # PolicyMixin's

        def _read(self) -> Any: ...

        def _transact(self, fn: Any, *, frees: bool) -> Any: ...

    def data_version(self) -> int:
        """A number that changes whenever any connection to the file, in any process, commits
        (``PRAGMA data_version`` on a connection of its own, so this store's commits count
        too): what a waiting :meth:`changes`, and the server's watchers, poll. Costs ~1 µs."""
        with self._signal_lock:
            conn = self._signal
            if conn is None:
                if self._readers is None:  # :memory: -- one connection: its total changes
                    return int(self._conn.total_changes)
                conn = self._signal = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def foreign_version(self) -> tuple[int, int] | None:
        """A value that changes when another connection commits (another process, or another
        store on the file) or this store's housekeeping changes data (``retention_changes``:
        a namespace cleared, a list trimmed, tombstones pruned, also by the purge a write runs
        every 512 writes), and **not** when this store's writes commit: ``PRAGMA data_version``
        on the writer connection. ``None`` while a write holds that connection (ask again
        later, or treat it as moved). The server's watch poller reads it: this store's writes
        wake their waiters themselves, key by key (``botwire_server.watch``)."""
        own = self.retention_changes  # this store's own housekeeping changed data
        if self._readers is None:  # :memory: -- no other connection can commit
            return (0, own)
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return (int(self._conn.execute("PRAGMA data_version").fetchone()[0]), own)
        finally:
            self._lock.release()

    def _close_signal(self) -> None:
        poller: VersionPoller | None = getattr(self, "_poller", None)
        if poller is not None:
            poller.close()
        with self._signal_lock:
            if self._signal is not None:
                self._signal.close()
                self._signal = None

    def wakeup(self, namespace: str, wake: Wake) -> Wakeup:
        """``SupportsWakeups``: ``wake()`` whenever ``namespace`` may have changed, seen by the
        store's one poller (module docstring)."""
        with self._signal_lock:
            poller: VersionPoller | None = getattr(self, "_poller", None)
            if poller is None:
                poller = self._poller = VersionPoller(
                    self.data_version, self.high_waters, poll=WATCH_POLL, backstop=WATCH_BACKSTOP
                )
        return poller.add(namespace, wake)

    def changes(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: int | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> Changes:
        """What changed under ``prefix`` after version ``after`` (``SupportsChanges``); with
        ``wait`` > 0, block up to ``wait`` seconds for a change, woken by the store's poller
        (a commit by any process sharing the file)."""
        check_changes_args(namespace, prefix, after, limit)
        deadline = time.monotonic() + max(0.0, float(wait))

        def read(since: int | None) -> Changes:
            with self._read() as tx:
                found: Changes = self.engine.changes(
                    tx, namespace, prefix, since, limit, self.clock()
                )
            return found

        if after is None or wait <= 0:
            return read(after)
        return wait_for_change(read, functools.partial(self.wakeup, namespace), deadline, after)

    def prune_tombstones(self, *, max_batches: int | None = None) -> int:
        """Forget tombstones older than the retention (``Engine.tombstone_seconds``),
        :data:`~botwire.store._sqlwatch.PRUNE_BATCH` per transaction; return how many."""
        pruned = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            done = int(
                self._transact(
                    functools.partial(self.engine.prune_tombstones, now=self.clock()), frees=True
                )
            )
            pruned += done
            if done < PRUNE_BATCH:
                break
        return pruned

    def changed_keys(self, afters: dict[str, int], limit: int) -> dict[str, list[str] | None]:
        """Per namespace, the keys written or deleted after its version in ``afters``
        (``Engine.changed_keys``: ``None`` when more than ``limit``), in one snapshot."""
        with self._read() as tx:
            return {ns: self.engine.changed_keys(tx, ns, a, limit) for ns, a in afters.items()}

    def high_waters(self, namespaces: list[str]) -> dict[str, int]:
        """Each namespace's highest version (entries, tombstones, pruning: ``high_water``), in
        one snapshot: what the server's poller compares to see which namespaces moved."""
        with self._read() as tx:
            return {ns: self.engine.high_water(tx, ns) for ns in namespaces}
