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
from ._sql import Engine, Tx, check_batch_size, fingerprint

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
)
_HOUSEKEEPING_EVERY = 512  # write transactions between purges of expired entries


class _SQLiteTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


def _next_version(tx: Tx) -> int:
    row = tx.one("UPDATE bw_meta SET version = version + 1 WHERE id = 1 RETURNING version")
    assert row is not None
    return int(row[0])


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
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument(
                f"botwire: synchronous={synchronous!r}; use 'NORMAL', 'FULL' or 'EXTRA'."
            )
        self.path = os.fspath(path)
        self.clock = clock
        self.engine = Engine(limits=limits or Limits(), clock=clock, next_version=_next_version)
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

    @property
    def limits(self) -> Limits:
        return self.engine.limits

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise Unavailable(f"botwire: SQLite file {self.path!r} is busy: {exc}") from exc
            try:
                yield self._tx
            except BaseException:
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
        if idempotency_key is None and all(op.kind == "get" for op in ops):
            with self._read() as tx:
                return [self.engine.read_result(tx, namespace, op, now) for op in ops]
        digest = fingerprint(ops, atomic) if idempotency_key is not None else None
        with self._write() as tx:
            results = self.engine.apply(
                tx,
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=idempotency_key,
                fingerprint=digest,
                now=now,
            )
        self._after_write()
        return results

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
        with self._lock:
            self._conn.close()

    def _after_write(self) -> None:
        self._writes += 1
        if self._writes % _HOUSEKEEPING_EVERY == 0:
            with contextlib.suppress(Unavailable):  # busy: the next round will purge
                self.purge_expired()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
