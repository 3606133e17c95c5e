"""The PostgreSQL store's transaction: a :class:`~botwire.store.Tx` over one psycopg connection,
pipelined."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from botwire.store._sql import Tx, TxHooks
from botwire.store._sqltext import SAVEPOINT_SQL

from ._pg_common import pg_sql

__all__ = ["BEGIN_WRITE", "NEXTVAL", "NEXTVAL_SERIES", "VERSION_SQL", "PgTx", "next_version"]

#: A new version: in the namespace lock's RETURNING (the engine's ``version_sql``), or alone.
VERSION_SQL = "nextval('bw_version')"
NEXTVAL = f"SELECT {VERSION_SQL}".encode()
#: ``?`` new versions, in ascending order (``AsyncPgTx.reserve``)
NEXTVAL_SERIES = f"SELECT {VERSION_SQL} FROM generate_series(1, ?)"
BEGIN_WRITE = b"BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"


class PgTx(TxHooks):
    """A :class:`~botwire.store.Tx` over one psycopg connection (in pipeline mode for writes):
    ``clear``, usage, policies and housekeeping (a store's ``batch`` runs ``_pg_write``).

    Statements whose results are not read (``run``, ``many``) are only queued; ``one``/``all``
    flush the queue and wait. The engine says which statement is the lock and which are
    savepoints through :class:`~botwire.store.Tx`'s hooks: no statement text is recognised.
    """

    __slots__ = ("_conn", "_rolled_back")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._rolled_back = False  # to a savepoint: ``many`` then avoids ``executemany``

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.execute(pg_sql(sql), params)
        return cur

    def savepoint(self) -> None:
        self._execute(SAVEPOINT_SQL, ())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._execute(sql, params)

    def rollback_savepoint(self) -> None:
        super().rollback_savepoint()
        self._rolled_back = True

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """The rows queued with ``executemany`` (a 1,000-item append: 7 ms, against 29 as one
        ``execute`` per row), or one ``execute`` per row once this transaction rolled back to
        a savepoint. psycopg then owes the session a ``DEALLOCATE ALL`` (it forgets its
        prepared statements on seeing a ``ROLLBACK``; with a pipeline, whenever that result is
        read), sent at the end of its next ``execute``. ``executemany`` prepares its statement
        at once, even with the reset still owed: the reset dropped it while psycopg believed
        it prepared, and its next use failed (``tests/postgres/test_lost_statements.py``)."""
        if not rows:
            return
        pg = pg_sql(sql)
        if not self._rolled_back:
            self._conn.cursor().executemany(pg, rows)
            return
        for row in rows:
            self._conn.cursor().execute(pg, row)

    def next_version(self) -> int:
        """A new version, for a transaction whose lock did not allocate one."""
        cur = self._conn.cursor()
        cur.execute(NEXTVAL)
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def next_version(tx: Tx) -> int:
    """The engine's ``next_version`` hook: the sequence ``bw_version``."""
    assert isinstance(tx, PgTx)
    return tx.next_version()
