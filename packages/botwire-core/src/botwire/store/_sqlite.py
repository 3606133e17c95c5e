"""The embedded store: one SQLite file, shared safely by threads and processes.

WAL journal, ``BEGIN IMMEDIATE`` for writes (so a writer never has to upgrade a read lock and
deadlock), a generous busy timeout, and ``synchronous=NORMAL`` by default: a killed process loses
nothing it committed; ``synchronous="FULL"`` also survives power loss.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import _fork
from .._errors import InvalidArgument, StorageFull, Unavailable
from .._names import check_key
from .._types import Entry, KeyPage, Limits, Op, Usage
from ._guard import FileGuard, busy_error, is_full
from ._readers import Readers
from ._sql import SQLITE_OCTETS, Engine, JSONEntry, Tx, check_batch_size, fingerprint, recount_sql
from ._sqlitefile import SCHEMA, Checkpointer, SQLiteTx, create_private, next_version
from ._sqlitegroup import GroupCommitMixin
from ._sqlitepolicy import PolicyMixin
from ._sqlitewatch import SQLiteWatch
from ._sqlrows import DeferredRows
from ._sqltext import POLICY_INDEXES, policy_migration, records_migration

__all__ = ["SQLiteStore"]

#: 2 (issue 13): idempotency records counted in UTF-8 bytes; 3 (issue 18): the retention
#: policy's columns (``POLICY_SCHEMA``, added by :meth:`SQLiteStore._migrate`); 4 (issue 18): the
#: change feed's tables (``_sqlwatch.WATCH_SCHEMA``, created by ``SCHEMA`` on every open).
POLICY_SCHEMA = 3
#: Schema 5 (issue 22): ``bw_namespaces.records``, the idempotency records a namespace keeps.
RECORDS_SCHEMA = 5
SCHEMA_VERSION = 5
_HOUSEKEEPING_EVERY = 512  # write transactions between purges of expired entries
_FREEING = frozenset(("delete", "check", "get"))
#: A list trim or delete touching more rows than this is done logically, its rows swept later
DEFER_ROWS = 2000
#: List rows removed per sweep transaction (measured ~2 ms each on the development machine)
SWEEP_ROWS = 1000
#: A read of more list items than this is joined into JSON by SQLite (get_json)
_JOIN_ROWS = 1000
_ENTRY_SQL = (
    "SELECT kind, value, version, created_at, updated_at, expires_at, head, tail FROM bw_entries"
    " WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)"
)
_BACKSTOP_PAGES = 10000  # WAL pages (~40 MB) past which writers checkpoint despite the thread


class SQLiteStore(GroupCommitMixin, PolicyMixin, SQLiteWatch):
    """A :class:`~botwire.store.Store` on one SQLite file.

    Example::

        from botwire import Memory
        from botwire.store import SQLiteStore

        store = SQLiteStore("/tmp/agent.db", limits=Limits(max_value_bytes=1 << 20))
        memory = Memory("user-42", store=store)

    ``clock`` returns the current time in seconds (tests inject one to move time without
    sleeping). Threads share one connection behind a lock; processes coordinate through SQLite.

    A full disk raises :class:`~botwire.StorageFull`; with ``reserve_space`` (the server's
    setting) a reserve file next to the database is released then, so deletes and ``clear``
    still find room. A file removed, replaced or made read-only under the store is detected
    before every commit (:class:`~botwire.store._guard.FileGuard`).
    """

    keys_clears = True  # clear(idempotency_key=) records its answer (ThreadedAsyncStore.clear)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
        background_checkpoint: float | None = None,
        reserve_space: bool = False,
        auto_sweep: bool = True,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument(
                f"botwire: synchronous={synchronous!r}; use 'NORMAL', 'FULL' or 'EXTRA'."
            )
        self.path = os.fspath(path)
        self.clock = clock
        # BEGIN IMMEDIATE already excludes other writers: no namespace lock is needed.
        self.engine = Engine(
            limits=limits or Limits(), clock=clock, next_version=next_version, lock_first=False
        )
        self._lock = threading.RLock()
        self._writes = 0
        if self.path != ":memory:" and not self.path.startswith("file:"):
            create_private(self.path)
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise Unavailable(f"botwire: cannot open SQLite file {self.path!r}: {exc}") from exc
        self._conn = conn
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        _enable_wal(conn, self.path, busy_timeout)
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._tx = SQLiteTx(conn)
        self._guard: FileGuard | None = None
        with self._write() as tx:
            for statement in SCHEMA:
                tx.run(statement)
            self._migrate(tx)
        if self.path != ":memory:" and not self.path.startswith("file:"):
            self._guard = FileGuard(self.path, reserve=reserve_space)
            if background_checkpoint is None:
                conn.execute(f"PRAGMA wal_autocheckpoint={self._wal_pages(1000)}")
        self._readers: Readers[SQLiteTx] | None = None
        if self.path != ":memory:" and not self.path.startswith("file:"):
            self._readers = Readers(self.path, busy_timeout, SQLiteTx)
        # Long lists are trimmed and deleted at once logically, their rows swept afterwards in
        # chunks (DeferredRows.sweep); auto_sweep: by the call that left them, else by sweep().
        trashed = bool(self._conn.execute("SELECT 1 FROM bw_trash LIMIT 1").fetchone())
        self._rows = DeferredRows(DEFER_ROWS, trashed=trashed)
        self.engine.rows = self._rows
        self.auto_sweep = auto_sweep
        self._checkpointer: Checkpointer | None = None
        self._background_checkpoint = background_checkpoint
        # a connection of its own for ``data_version`` (see data_version()), opened when needed
        self._signal: sqlite3.Connection | None = None
        self._signal_lock = threading.Lock()
        if background_checkpoint is not None and self.path != ":memory:":
            conn.execute(f"PRAGMA wal_autocheckpoint={self._wal_pages(_BACKSTOP_PAGES)}")
            self._checkpointer = Checkpointer(self, background_checkpoint)
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a forked child (gunicorn ``--preload``, ``multiprocessing``): SQLite forbids using
        a connection across ``fork()``, and closing it here could run the WAL cleanup under the
        parent's feet, so the parent's handle is kept aside untouched and the child opens its
        own; a lock another thread held at the fork is replaced."""
        self._lock = threading.RLock()
        self._signal_lock = threading.Lock()
        if self._signal is not None:  # the parent's: never used (nor closed) in the child
            _fork.abandon(self._signal)
            self._signal = None
        if self.path == ":memory:":  # a private copy of the parent's memory: still coherent
            return
        try:
            self._conn.total_changes  # noqa: B018 -- raises once the parent closed the store
        except sqlite3.ProgrammingError:
            return  # closed: nothing to reopen (and never create the file anew)
        if not os.path.exists(self.path):
            return  # removed under us: reopening would create an empty database
        _fork.abandon(self._conn)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        self._conn = conn
        self._tx = SQLiteTx(conn)  # and a fresh version block: the parent's is the parent's
        if self._checkpointer is not None:  # its thread did not survive the fork
            _fork.abandon(self._checkpointer)
            conn.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_PAGES}")
            self._checkpointer = Checkpointer(self, self._background_checkpoint or 1.0)

    def _migrate(self, tx: Tx) -> None:
        """Bring an older file's schema up to :data:`SCHEMA_VERSION` (in the opening write
        transaction, so concurrent openers migrate once). 2 (issue 13): idempotency records
        count in their namespace's bytes, in UTF-8 bytes; a one-time recount counts the records
        kept before (by a version that did not count them, or counted characters). The policy
        indexes (issue 22) are made if missing on every open: older releases ignore them."""
        row = tx.one("SELECT schema FROM bw_meta WHERE id = 1")
        current = int(row[0]) if row is not None else SCHEMA_VERSION
        if current > SCHEMA_VERSION:
            raise Unavailable(
                f"botwire: SQLite file {self.path!r} has schema {current}, newer than this "
                f"botwire understands ({SCHEMA_VERSION}); upgrade botwire."
            )
        if current < 2:
            tx.run(recount_sql(SQLITE_OCTETS))
        added: list[str] = []
        if current < POLICY_SCHEMA:
            added += policy_migration("REAL", "INTEGER")
        if current < RECORDS_SCHEMA:  # NULL: counted by the namespace's next keyed write
            added.append(records_migration("INTEGER"))
        if added:
            have = {row[1] for row in tx.all("PRAGMA table_info(bw_namespaces)")}
            for statement in added:
                if statement.split()[5] not in have:  # ALTER TABLE t ADD COLUMN <name>
                    tx.run(statement)
        for statement in POLICY_INDEXES:
            tx.run(statement)
        if current < POLICY_SCHEMA:
            tx.run(  # idle ages count from the upgrade
                "UPDATE bw_namespaces SET written_at = ? WHERE written_at IS NULL", (self.clock(),)
            )
        if current != SCHEMA_VERSION:
            tx.run("UPDATE bw_meta SET schema = ? WHERE id = 1", (SCHEMA_VERSION,))

    def _wal_pages(self, pages: int) -> int:
        """The WAL size (pages) past which a writer checkpoints: ``pages``, but at most 1/16 of
        a small filesystem, so the WAL never takes the space a full disk's checkpoint (and its
        deletes) will need; measured on a 3 MB tmpfs, a 40 MB backstop let the WAL take 97% of
        the disk and no delete could run once it was full."""
        guard = self._guard
        total = guard.fs_bytes if guard is not None else 0
        if not total:
            return pages
        return max(16, min(pages, total // 16 // 4096))

    @property
    def limits(self) -> Limits:
        return self.engine.limits

    # -- transactions ------------------------------------------------------------------------

    def _begin(
        self, conn: sqlite3.Connection, ns: str | None = None, key: str | None = None
    ) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise busy_error(self.path, exc, self._busy_timeout, ns, key) from exc

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        with self._lock:
            conn = self._conn
            self._begin(conn)
            try:
                yield self._tx
                if self._guard is not None:
                    self._guard.check_file()
                conn.execute("COMMIT")
            except BaseException as exc:
                self._tx.versions.drop()  # a block reserved in this transaction is undone
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._failed(exc, retry=False)
                raise

    def _transact(self, fn: Callable[[Tx], Any], *, frees: bool) -> Any:
        """``fn`` in a write transaction (:meth:`_write`'s failures); one that only frees space
        (``clear``, purges, deletes) is tried once more after a full disk, the reserve
        released."""
        for attempt in (0, 1):
            with self._lock:
                conn = self._conn
                self._begin(conn)
                try:
                    result = fn(self._tx)
                    if self._guard is not None:
                        self._guard.check_file()
                    conn.execute("COMMIT")
                except BaseException as exc:
                    self._tx.versions.drop()
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if self._failed(exc, retry=frees and attempt == 0):
                        continue
                    raise
            if self._guard is not None:
                self._guard.on_success(not frees)
            return result
        raise AssertionError("unreachable")

    def _failed(
        self, exc: BaseException, *, retry: bool, ns: str | None = None, key: str | None = None
    ) -> bool:
        """After a failed write's rollback: ``True`` to try it once more (a full disk whose
        reserve was just released, when ``retry``); raises botwire's error for a full disk
        (:class:`StorageFull`), a removed/read-only file or an I/O error; ``False`` to
        re-raise ``exc`` as it is."""
        if not isinstance(exc, sqlite3.Error):
            return False
        guard = self._guard
        if is_full(exc):
            if guard is None:
                raise StorageFull(
                    f"botwire: the disk holding {self.path!r} is full: free space on it, or "
                    "delete keys you no longer need.",
                ) from exc
            guard.on_full()
            with contextlib.suppress(sqlite3.Error):  # a complete one lets the WAL restart
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if retry:
                return True
            raise guard.full_error(ns, key) from exc
        failure = guard.failure(exc) if guard is not None else None
        if failure is not None:
            raise failure from exc
        return False

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        """A read transaction (one snapshot): on this thread's read-only connection, so that
        it never holds up a writer, or on the store's one connection for ``:memory:``."""
        if self._readers is None:
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN")
                try:
                    yield self._tx
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            return
        readers = self._readers
        with readers._lock:
            tx = readers.tx()
            conn = tx._conn
            conn.execute("BEGIN")
            try:
                yield tx
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _gate(self) -> Any:
        """What a read outside a transaction holds: the readers' gate, or the store's lock
        (``:memory:``: reads share the writer's connection); with :meth:`_reader_tx`."""
        return self._lock if self._readers is None else self._readers._lock

    def _reader_tx(self) -> SQLiteTx:
        return self._tx if self._readers is None else self._readers.tx()

    # -- the Store protocol ------------------------------------------------------------------

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        with self._gate():
            # One statement reads the entry and its items consistently; no BEGIN needed.
            return self.engine.read(self._reader_tx(), namespace, key, tail, self.clock())

    def get_json(self, namespace: str, key: str, *, tail: int | None = None) -> JSONEntry | None:
        """Like :meth:`get`, with the value as its stored JSON text (see ``Engine.read_json``)."""
        now = self.clock()
        with self._gate():
            tx: Tx = self._reader_tx()
            found = tx.one(_ENTRY_SQL, (namespace, key, now))
            if found is None:
                return None
            kind, text, version, created, updated, expires, head, end = found
            if kind != 1 and tail is None:  # a plain value: this one statement is the read
                return text, version, created, updated, expires
            bad_tail = tail is not None and tail < 0  # the engine's read names the error
            start = head if tail is None or tail < 0 else max(head, end - tail)
            if kind != 1 or bad_tail or end - start <= _JOIN_ROWS or self._readers is None:
                return self.engine.read_json(tx, namespace, key, tail, now)  # one statement
        with self._read() as tx:  # a long list: one snapshot for both statements
            found = tx.one(_ENTRY_SQL, (namespace, key, now))
            if found is None or found[0] != 1:  # changed meanwhile
                return self.engine.read_json(tx, namespace, key, tail, now)
            kind, text, version, created, updated, expires, head, end = found
            start = head if tail is None or tail < 0 else max(head, end - tail)
            # A long list joined by SQLite itself, off the GIL: built row by row in Python it
            # held the GIL for ~0.5 s, and the event loop's other requests waited on it.
            # (The rows come in the primary key's order, that of the range scan.)
            # (The brackets too: one 15 MB copy fewer under the GIL.)
            row = tx.one(
                "SELECT '[' || coalesce(group_concat(value, ','), '') || ']' FROM (SELECT value"
                " FROM bw_items WHERE ns = ? AND key = ? AND seq >= ? AND seq < ? ORDER BY seq)",
                (namespace, key, start, end),
            )
            text = row[0] if row is not None else "[]"
            return text, version, created, updated, expires

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
        light: bool = False,
    ) -> list[dict[str, Any]]:
        """``light`` (an inline server's call, on its event loop): a batch that would remove a
        list's rows (a set or delete over a list) is rolled back and raises
        :class:`~botwire.store._sqlitegroup.HeavyWrite`, to be run again off the loop."""
        now = self.clock()
        check_batch_size(namespace, len(ops))
        if all(op.kind == "get" for op in ops):  # reads keep no idempotency record
            with self._read() as tx:
                return [self.engine.read_result(tx, namespace, op, now) for op in ops]
        digest = fingerprint(ops, atomic) if idempotency_key is not None else None
        # Deletes (and checks) free space: on a full disk they get one more try, the reserve
        # released; anything else that adds data gets StorageFull.
        frees = all(op.kind in _FREEING for op in ops)
        key = ops[0].key if len(ops) == 1 else None
        if not frees and self._guard is not None and self._guard.full_since is not None:
            self._check_room(self._guard, namespace, key)
        # _transact() inlined: this is every write's path, and a closure per call costs.
        for attempt in (0, 1):
            with self._lock:
                conn = self._conn
                self._begin(conn, namespace, key)
                try:
                    if light:
                        results = self._apply_light(
                            namespace, ops, atomic, idempotency_key, digest, now
                        )
                    else:
                        results = self.engine.apply(
                            self._tx,
                            namespace,
                            ops,
                            atomic=atomic,
                            idempotency_key=idempotency_key,
                            fingerprint=digest,
                            now=now,
                        )
                    if self._guard is not None:
                        self._guard.check_file()  # never acknowledge into a removed file
                    conn.execute("COMMIT")
                except BaseException as exc:
                    self._tx.versions.drop()  # a block reserved in this transaction is undone
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if self._failed(exc, retry=frees and attempt == 0, ns=namespace, key=key):
                        continue
                    raise
            break
        if self._guard is not None:
            self._guard.on_success(not frees)
        self._after_write()
        if self._rows.trashed and self.auto_sweep:
            self.sweep()
        return results

    def read_batch_json(self, namespace: str, ops: Sequence[Op]) -> list[str]:
        """The results of a batch of gets as JSON texts, values spliced in (one snapshot)."""
        now = self.clock()
        check_batch_size(namespace, len(ops))
        with self._read() as tx:
            return [
                self.engine.result_json_from_rows(
                    namespace, op, tx.all(*self.engine.read_query(namespace, op.key, op.tail, now))
                )
                for op in ops
            ]

    def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]]:
        """(key, bytes, updated_at) of the most recently updated keys (``Engine.recent_keys``)."""
        with self._read() as tx:
            return self.engine.recent_keys(tx, namespace, limit, self.clock())

    def list_namespaces(
        self, prefix: str = "", after: str | None = None, limit: int = 500
    ) -> list[tuple[str, int, int]]:
        """``(namespace, keys, bytes)`` of namespaces with keys (``Engine.list_namespaces``)."""
        with self._read() as tx:
            return self.engine.list_namespaces(tx, prefix, after, limit)

    def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int:
        """JSON bytes reading ``keys`` would return (``Engine.stored_bytes``)."""
        with self._read() as tx:
            return self.engine.stored_bytes(tx, namespace, keys, self.clock())

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        if cursor:
            check_key(cursor, namespace)
        with self._read() as tx:
            return self.engine.list_keys(tx, namespace, prefix, cursor, limit, self.clock())

    def clear(self, namespace: str, *, idempotency_key: str | None = None) -> int:
        now, ikey = self.clock(), idempotency_key
        clear = functools.partial(self.engine.clear, ns=namespace, now=now, idempotency_key=ikey)
        gone = int(self._transact(clear, frees=True))
        if self._rows.trashed and self.auto_sweep:
            self.sweep()
        return gone

    @property
    def needs_sweep(self) -> bool:
        """Whether rows of trimmed or deleted long lists are waiting for :meth:`sweep`."""
        return bool(self._rows.trashed)

    def sweep(self, *, max_chunks: int | None = None) -> int:
        """Remove the rows left by trims and deletes of long lists, :data:`SWEEP_ROWS` per
        transaction with the lock released in between, so other writers (threads and
        processes) wait for one chunk at most; return the rows removed."""
        removed = chunks = 0
        self._rows.trashed = False
        while max_chunks is None or chunks < max_chunks:
            chunks += 1
            done = self._transact(functools.partial(self._rows.sweep, limit=SWEEP_ROWS), frees=True)
            if done < 0:
                return removed
            removed += done
            time.sleep(0.001)  # hand the lock (and SQLite's) to a waiting writer
        self._rows.trashed = True  # more left
        return removed

    def usage(self, namespace: str) -> Usage:
        now = self.clock()
        try:
            usage: Usage = self._transact(
                lambda tx: self.engine.usage(tx, namespace, now), frees=True
            )
        except StorageFull:
            # A full disk: report from a read, without purging expired entries first.
            with self._read() as tx:
                stats = self.engine._peek_namespace(tx, namespace, now)
            usage = Usage(
                namespace,
                stats.keys,
                stats.bytes,
                stats.writes,
                (stats.day + 1) * 86400.0,
                self.limits,
            )
        return usage

    def ping(self) -> None:
        """For ``/readyz``: raise unless the store can serve writes: the file is the one
        opened (:class:`~botwire.Unavailable` otherwise) and the disk is not full
        (:class:`~botwire.StorageFull`)."""
        with self._lock:
            self._conn.execute("SELECT 1 FROM bw_meta").fetchone()
            guard = self._guard
            if guard is None:
                return
            guard.check_file()
            if guard.full_since is not None:
                self._check_room(guard)

    def _check_room(self, guard: FileGuard, ns: str | None = None, key: str | None = None) -> None:
        """On a full disk, refuse a write that adds data before it starts (a failing write
        would still grow the WAL into the space deletes need) unless there is room again:
        on the disk, or inside the file (pages freed by deletes)."""
        with self._lock:
            pages = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        if not guard.recover(int(pages) * int(size)):
            raise guard.full_error(ns, key)

    def integrity_check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` verdict (``"ok"`` when the file is sound)."""
        with self._lock:
            row = self._conn.execute("PRAGMA integrity_check").fetchone()
        return str(row[0])

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            self._conn.close()
        self._close_signal()
        if self._readers is not None:
            self._readers.close()

    def _after_write(self) -> None:
        self._writes += 1
        if self._writes % _HOUSEKEEPING_EVERY == 0:
            # The write is committed: a purge that fails (busy, a full disk...) must not turn
            # its answer into an error. The next round will purge.
            with contextlib.suppress(Unavailable, StorageFull, sqlite3.Error):
                # One batch only: this runs inside a request; the server's housekeeping
                # (or the next 512 writes) carries on.
                self.purge_expired(max_batches=1)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"


def _enable_wal(conn: sqlite3.Connection, path: str, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting out other processes opening the same new file.

    Switching a file to WAL needs an exclusive lock, and SQLite answers "database is locked" at
    once (no busy handler) while another connection holds one: six processes opening one new
    file together failed so. The mode is persistent, so the first switch serves them all.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"botwire: cannot switch SQLite file {path!r} to WAL: {exc} for "
                    f"{timeout:g} s (another process holds it); retry, or raise the timeout"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
