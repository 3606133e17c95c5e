"""The SQLite file's parts below the store: its schema, its transaction (:class:`SQLiteTx`),
version blocks (:class:`Versions`), the background checkpointer and private file creation."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _fork
from ._sqlbase import Tx, TxHooks
from ._sqltext import RECENT_INDEX_DROP, RECORDS_AGE_INDEX
from ._sqlwatch import WATCH_SCHEMA

if TYPE_CHECKING:
    from ._sqlite import SQLiteStore

SCHEMA = (
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
    RECORDS_AGE_INDEX,
    # list rows left to remove after a long list was trimmed or deleted: every bw_items row of
    # (ns, key) with seq < below is garbage, removed in small chunks by sweep() (DeferredRows.sweep)
    "CREATE TABLE IF NOT EXISTS bw_trash (ns TEXT NOT NULL, key TEXT NOT NULL,"
    " below INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID",
    # the change feed (issue 18, watch): tombstones, pruned horizons, entries by version
    *(
        s.format(
            text="TEXT NOT NULL", bigint="INTEGER", real="REAL", without_rowid=" WITHOUT ROWID"
        )
        for s in WATCH_SCHEMA
    ),
    # The compatibility listing (newest first) reads the change feed's bw_entries_version
    # instead (issue 22): this index of update times changed with every write of an entry,
    # an index entry more per write (115 B of disk per chat message on PostgreSQL). Dropped on
    # open; an older botwire that opens the file creates it again, and either works with or
    # without it.
    RECENT_INDEX_DROP,
)


class SQLiteTx(TxHooks):
    """A :class:`~botwire.store.Tx` on one ``sqlite3`` connection (autocommit mode: the store
    issues ``BEGIN``/``COMMIT``); its version block is dropped when a savepoint is undone."""

    __slots__ = ("_conn", "versions")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.versions = Versions(conn)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)

    def rollback_savepoint(self) -> None:
        self.versions.drop()  # a block reserved since the savepoint is undone with it
        super().rollback_savepoint()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class Checkpointer:
    """Copies the WAL back into the database file from a thread of its own, off the writers'
    path: with ``synchronous=NORMAL`` a commit only appends to the WAL, and the checkpoint
    (copy + fsync) is the costliest part of SQLite's write path when a committing writer runs it.
    A ``PASSIVE`` checkpoint never waits for, nor blocks, readers or writers."""

    def __init__(self, store: SQLiteStore, every: float) -> None:
        self._store = store
        self._every = every
        self._stop = threading.Event()
        self._seen = -1
        # Held while inside SQLite, so a fork() waits for it (see _fork): a thread forked away
        # mid-call would leave SQLite's own mutexes locked forever in the child.
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="botwire-checkpoint", daemon=True)
        self._thread.start()
        _fork.register(self)

    def _after_fork(self) -> None:
        """Nothing: the thread did not survive the fork; the store starts a new checkpointer."""

    def _run(self) -> None:
        conn = sqlite3.connect(self._store.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._every):
                writes = self._store._writes
                if writes != self._seen:
                    self._seen = writes
                    with self._lock, contextlib.suppress(sqlite3.Error):  # busy: next round
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


VERSION_BLOCK = 64


class Versions:
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
                (VERSION_BLOCK,),
            ).fetchone()
            self._end = int(row[0]) + 1
            self._next = self._end - VERSION_BLOCK
        self._data_version = seen
        version = self._next
        self._next += 1
        return version


def create_private(path: str) -> None:
    """Create the file's directory (0700) and the file itself (0600) if they are missing, both
    narrowed further by the umask. SQLite gives the ``-wal`` and ``-shm`` files it creates the
    database file's mode, so they are private too; an existing file keeps its mode."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # sqlite3.connect reports it with the path (read-only directory...)
    os.close(fd)


def next_version(tx: Tx) -> int:
    """The engine's ``next_version`` hook."""
    assert isinstance(tx, SQLiteTx)
    return tx.versions.take()
