"""The embedded store: one SQLite file, shared safely by threads and processes.

WAL journal, ``BEGIN IMMEDIATE`` for writes (so a writer never has to upgrade a read lock and
deadlock), a generous busy timeout, and ``synchronous=NORMAL`` by default: a killed process loses
nothing it committed; ``synchronous="FULL"`` also survives power loss.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._errors import InvalidArgument, Unavailable
from .._names import check_key
from .._types import Entry, KeyPage, Limits, Op, Usage
from ._sql import Engine, JSONEntry, Tx, check_batch_size, fingerprint

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bw_meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL, schema INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO bw_meta (id, version, schema) VALUES (1, 0, 1)",
    "CREATE TABLE IF NOT EXISTS bw_entries (ns TEXT NOT NULL, key TEXT NOT NULL,"
    " kind INTEGER NOT NULL, value TEXT, version INTEGER NOT NULL, created_at REAL NOT NULL,"
    " updated_at REAL NOT NULL, expires_at REAL, bytes INTEGER NOT NULL,"
    " length INTEGER NOT NULL DEFAULT 0, head INTEGER NOT NULL DEFAULT 0,"
    " tail INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS bw_entries_expiry ON bw_entries (expires_at)"
    " WHERE expires_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS bw_items (ns TEXT NOT NULL, key TEXT NOT NULL,"
    " seq INTEGER NOT NULL, value TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " PRIMARY KEY (ns, key, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bw_namespaces (ns TEXT PRIMARY KEY, keys INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL, day INTEGER NOT NULL, writes INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bw_idempotency (ns TEXT NOT NULL, ikey TEXT NOT NULL,"
    " fingerprint TEXT, created_at REAL NOT NULL, response TEXT NOT NULL,"
    " PRIMARY KEY (ns, ikey)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS bw_idempotency_age ON bw_idempotency (created_at)",
    # the compatibility listing (newest first) reads this instead of sorting the namespace;
    # WITHOUT ROWID: its entries end with the primary key, so ties come in key order too
    "CREATE INDEX IF NOT EXISTS bw_entries_recent ON bw_entries (ns, updated_at, version)",
)
_HOUSEKEEPING_EVERY = 512  # write transactions between purges of expired entries
# With a background checkpointer, writers still checkpoint themselves past this many WAL pages
# (~40 MB), so the WAL stays bounded even if the thread falls behind.
_BACKSTOP_PAGES = 10000


class _SQLiteTx:
    __slots__ = ("_conn", "versions")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.versions = _Versions(conn)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.startswith("ROLLBACK"):  # the engine's ROLLBACK TO SAVEPOINT
            self.versions.drop()
        self._conn.execute(sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class _Checkpointer:
    """Copies the WAL back into the database file from a thread of its own, off the writers'
    path: with ``synchronous=NORMAL`` a commit only appends to the WAL, and the checkpoint
    (copy + fsync) is the costliest part of SQLite's write path when a committing writer runs it.
    A ``PASSIVE`` checkpoint never waits for, nor blocks, readers or writers."""

    def __init__(self, store: SQLiteStore, every: float) -> None:
        self._store = store
        self._every = every
        self._stop = threading.Event()
        self._seen = -1
        self._thread = threading.Thread(target=self._run, name="botwire-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._store.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._every):
                writes = self._store._writes
                if writes != self._seen:
                    self._seen = writes
                    with contextlib.suppress(sqlite3.Error):  # busy: the next round retries
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


_VERSION_BLOCK = 64


class _Versions:
    """Versions handed out from a block reserved in ``bw_meta``, one ``UPDATE`` per block.

    Bumping ``bw_meta`` on every write costs a statement and a page in every commit. A block
    ``[next, end)`` reserved (and committed) by this connection may be used while no other
    connection has committed since this one last took a version (``PRAGMA data_version``, read
    inside the write transaction, says so): then no one can hold a version above ``next``, so
    versions still grow in commit order across processes; any other commit, or any rollback that
    may have undone the reservation, drops the block. Unused versions are skipped, never reused.
    """

    __slots__ = ("_conn", "_data_version", "_end", "_next")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._next = self._end = 0
        self._data_version: int | None = None

    def drop(self) -> None:
        self._next = self._end = 0

    def take(self) -> int:
        """A new version; the caller holds the write lock (``BEGIN IMMEDIATE``)."""
        conn = self._conn
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._next >= self._end or seen != self._data_version:
            row = conn.execute(
                "UPDATE bw_meta SET version = version + ? WHERE id = 1 RETURNING version",
                (_VERSION_BLOCK,),
            ).fetchone()
            self._end = int(row[0]) + 1
            self._next = self._end - _VERSION_BLOCK
        self._data_version = seen
        version = self._next
        self._next += 1
        return version


def _next_version(tx: Tx) -> int:
    assert isinstance(tx, _SQLiteTx)
    return tx.versions.take()


class SQLiteStore:
    """A :class:`~botwire.store.Store` on one SQLite file.

    Example::

        from botwire import Memory
        from botwire.store import SQLiteStore

        store = SQLiteStore("/tmp/agent.db", limits=Limits(max_value_bytes=1 << 20))
        memory = Memory("user-42", store=store)

    ``clock`` returns the current time in seconds (tests inject one to move time without
    sleeping). Threads share one connection behind a lock; processes coordinate through SQLite.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
        background_checkpoint: float | None = None,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument(
                f"botwire: synchronous={synchronous!r}; use 'NORMAL', 'FULL' or 'EXTRA'."
            )
        self.path = os.fspath(path)
        self.clock = clock
        # BEGIN IMMEDIATE already excludes other writers: no namespace lock is needed.
        self.engine = Engine(
            limits=limits or Limits(), clock=clock, next_version=_next_version, lock_first=False
        )
        self._lock = threading.RLock()
        self._writes = 0
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise Unavailable(f"botwire: cannot open SQLite file {self.path!r}: {exc}") from exc
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._tx = _SQLiteTx(conn)
        with self._write() as tx:
            for statement in _SCHEMA:
                tx.run(statement)
        self._checkpointer: _Checkpointer | None = None
        if background_checkpoint is not None and self.path != ":memory:":
            conn.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_PAGES}")
            self._checkpointer = _Checkpointer(self, background_checkpoint)

    @property
    def limits(self) -> Limits:
        return self.engine.limits

    # -- transactions ------------------------------------------------------------------------

    def _begin(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"botwire: SQLite file {self.path!r} is busy: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        with self._lock:
            conn = self._conn
            self._begin(conn)
            try:
                yield self._tx
            except BaseException:
                self._tx.versions.drop()  # a block reserved in this transaction is undone
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield self._tx
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    # -- the Store protocol ------------------------------------------------------------------

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        with self._lock:
            # One statement reads the entry and its items consistently; no BEGIN needed.
            return self.engine.read(self._tx, namespace, key, tail, self.clock())

    def get_json(self, namespace: str, key: str, *, tail: int | None = None) -> JSONEntry | None:
        """Like :meth:`get`, with the value as its stored JSON text (see ``Engine.read_json``)."""
        with self._lock:
            return self.engine.read_json(self._tx, namespace, key, tail, self.clock())

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        now = self.clock()
        check_batch_size(namespace, len(ops))
        if all(op.kind == "get" for op in ops):  # reads keep no idempotency record
            with self._read() as tx:
                return [self.engine.read_result(tx, namespace, op, now) for op in ops]
        digest = fingerprint(ops, atomic) if idempotency_key is not None else None
        # _write() inlined: this is every write's path, and a generator-based context manager
        # costs microseconds per call.
        with self._lock:
            conn = self._conn
            self._begin(conn)
            try:
                results = self.engine.apply(
                    self._tx,
                    namespace,
                    ops,
                    atomic=atomic,
                    idempotency_key=idempotency_key,
                    fingerprint=digest,
                    now=now,
                )
                conn.execute("COMMIT")
            except BaseException:
                self._tx.versions.drop()  # a block reserved in this transaction is undone
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._after_write()
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

    def clear(self, namespace: str) -> int:
        with self._write() as tx:
            return self.engine.clear(tx, namespace, self.clock())

    def usage(self, namespace: str) -> Usage:
        with self._write() as tx:
            return self.engine.usage(tx, namespace, self.clock())

    def purge_expired(self) -> int:
        """Delete expired entries store-wide and forget idempotency records older than a day."""
        now = self.clock()
        with self._read() as tx:
            namespaces = self.engine.expired_namespaces(tx, now)
        purged = 0
        for ns in namespaces:
            with self._write() as tx:
                stats = self.engine.lock_namespace(tx, ns, now)
                purged += self.engine.purge_namespace(tx, ns, now, stats)
                self.engine.save_namespace(tx, ns, stats)
        with self._write() as tx:
            self.engine.forget_idempotency(tx, now)
        return purged

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

    def _after_write(self) -> None:
        self._writes += 1
        if self._writes % _HOUSEKEEPING_EVERY == 0:
            with contextlib.suppress(Unavailable):  # busy: the next round will purge
                self.purge_expired()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
