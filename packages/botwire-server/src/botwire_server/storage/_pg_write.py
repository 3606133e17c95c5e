"""PostgreSQL writes on the event loop: the engine's plans (``botwire.store._sqlplan``) driven
over a ``psycopg.AsyncConnection`` in pipeline mode, no worker thread per write.

:class:`AsyncPgTx` is :class:`~._pg_tx.PgTx` for an async connection: statements whose results
the plan does not read are queued, ``BEGIN`` rides with the first statement and ``COMMIT``
with the last, and ``nextval`` plus the reads the engine is known to issue next (the
idempotency record, the first op's entry) are prefetched behind the namespace lock, handed out
only for the identical query while nothing but prefetched reads and savepoints has run since.
:func:`drive_async` is :func:`botwire.store._sqlplan.drive` with ``await``: the very plan the
sync store runs (``Engine.plan_apply``), so every operation keeps one definition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from botwire._errors import BotWireError
from botwire.store._sqlplan import Plan
from botwire.store._sqltext import RELEASE_SQL, ROLLBACK_SQL, SAVEPOINT_SQL

from ._pg_common import pg_sql
from ._pg_tx import BEGIN_WRITE, NEXTVAL

__all__ = ["AsyncPgTx", "drive_async", "rollback_async", "write_async"]

T = TypeVar("T")
Query = tuple[str, tuple[Any, ...]]


class AsyncPgTx:
    """A transaction's statements on one ``AsyncConnection`` in pipeline mode (see module)."""

    __slots__ = ("_conn", "_plan", "_prefetched", "_version_cursor")

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], *, prefetch: Sequence[Query] | None = None
    ) -> None:
        self._conn = conn
        self._plan = prefetch
        self._prefetched: dict[Query, psycopg.AsyncCursor[Any]] = {}
        self._version_cursor: psycopg.AsyncCursor[Any] | None = None

    async def _execute(
        self, sql: str, params: Sequence[Any], *, keep: bool = False
    ) -> psycopg.AsyncCursor[Any]:
        if self._prefetched:
            hit = self._prefetched.pop((sql, tuple(params)), None)
            if hit is not None:
                return hit
            if not keep:  # any other statement may write: what was prefetched may be stale
                self._prefetched.clear()
        self._plan = None  # prefetching rides only with the first statement, the lock
        cur = self._conn.cursor()
        await cur.execute(pg_sql(sql), params)
        return cur

    async def lock(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        plan = self._plan
        cur = await self._execute(sql, params)
        if plan is not None:
            self._version_cursor = self._conn.cursor()
            await self._version_cursor.execute(NEXTVAL)
            for query, args in plan:
                early = self._conn.cursor()
                await early.execute(pg_sql(query), args)
                self._prefetched[(query, args)] = early
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row

    async def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = await (await self._execute(sql, params)).fetchone()
        return row

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await (await self._execute(sql, params)).fetchall()

    async def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._execute(sql, params)

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._prefetched.clear()
        if rows:
            await self._conn.cursor().executemany(pg_sql(sql), rows)

    async def savepoint(self) -> None:
        await self._execute(SAVEPOINT_SQL, (), keep=True)  # changes no data

    async def rollback_savepoint(self) -> None:
        await self.run(ROLLBACK_SQL)

    async def release_savepoint(self) -> None:
        await self.run(RELEASE_SQL)

    async def version(self) -> int:
        """A new version (the plan's ``"version"`` request): the sequence ``bw_version``."""
        cur, self._version_cursor = self._version_cursor, None
        if cur is None:
            cur = self._conn.cursor()
            await cur.execute(NEXTVAL)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def drive_async(tx: AsyncPgTx, plan: Plan[T]) -> T:
    """``botwire.store._sqlplan.drive`` on the event loop: each request is the awaited
    :class:`AsyncPgTx` method of its name; a failed statement is thrown into the plan."""
    send, throw = plan.send, plan.throw
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            request = send(result) if error is None else throw(error)
        except StopIteration as stop:
            value: T = stop.value
            return value
        error = None
        try:
            result = await getattr(tx, request[0])(*request[1:])
        except Exception as exc:
            error, result = exc, None


async def write_async(
    conn: psycopg.AsyncConnection[Any],
    plan: Plan[T],
    sent: list[bool],
    prefetch: Sequence[Query] | None = None,
) -> T:
    """``plan`` in one READ COMMITTED transaction on ``conn`` (autocommit), pipelined; a
    refused operation rolls back in the same round trip. ``sent[0]`` is set once ``COMMIT``
    may have reached the server (the outcome is unknown from then on)."""
    async with conn.pipeline():
        await conn.execute(BEGIN_WRITE)
        try:
            result = await drive_async(AsyncPgTx(conn, prefetch=prefetch), plan)
        except BotWireError:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(b"ROLLBACK")
            raise
        sent[0] = True
        await conn.execute(b"COMMIT")
    return result


async def rollback_async(conn: psycopg.AsyncConnection[Any]) -> None:
    """Roll back what a failed write left open, else the pool discards the connection."""
    if conn.closed or conn.broken:
        return
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with contextlib.suppress(psycopg.Error):
            await conn.execute("ROLLBACK")
