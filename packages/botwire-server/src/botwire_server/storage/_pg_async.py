"""PostgreSQL reads of single keys on the event loop: no worker thread per GET.

A GET is one autocommit statement, so it needs none of the write path's transaction machinery:
:class:`AsyncPgReader` runs the engine's read statement (``Engine.read_query``, the very SQL the
sync store runs) on a ``psycopg.AsyncConnection`` from a ``psycopg_pool.AsyncConnectionPool``
and hands the rows to the engine (``Engine.json_from_rows`` / ``entry_from_rows``). Measured
(``docs/server.md``, Performance): the thread hop, the pipeline loops and the GIL hand-offs of
the sync path cost more CPU than the query itself. Failures behave as on the sync path
(``PostgresStore._run``): a lost connection is retried on a fresh one (after dropping the
pool's dead connections), a pool wait longer than ``timeout`` is ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from typing import Any

import anyio
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from botwire.store import Entry
from botwire.store._sql import Engine, JSONEntry

from ._pg_common import (
    LOST,
    LOST_RETRIES,
    RETRYABLE,
    kept_aborting,
    no_connection,
    pg_sql,
    request_failed,
)

__all__ = ["AsyncPgReader"]

Rows = list[tuple[Any, ...]]


#: Rows converted per step of a read on the event loop (see ``_fetch_once``).
FETCH_CHUNK = 5000


class AsyncPgReader:
    """Single-key reads for one asyncio event loop; ``open`` and ``close`` it in that loop.

    Example (what :class:`~botwire_server.storage.StoreRunner` does)::

        reader = store.async_reader()       # a PostgresStore
        await reader.open()
        found = await reader.get_json("user-42", "chat", tail=20)
        await reader.close()
    """

    def __init__(
        self,
        dsn: str,
        connect_kwargs: dict[str, Any],
        *,
        engine: Engine,
        where: str,
        min_size: int,
        max_size: int,
        timeout: float,
        retries: int,
    ) -> None:
        self._engine = engine
        self._where = where
        self._retries = retries
        self._gate = _Gate(max_size, timeout)
        # prepare_threshold and the rest of the connect options (PgBouncer's
        # prepare_threshold=None included) are the sync pool's.
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs=connect_kwargs,
            timeout=timeout,
            open=False,
            name="botwire-reads",
        )

    async def open(self) -> None:
        """Start the pool (connections are made in the background, as the sync pool's are)."""
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None:
        """``PostgresStore.get_json`` on the event loop."""
        now = self._engine.clock()
        sql, params = self._engine.read_query(namespace, key, tail, now)
        rows = await self._fetch(pg_sql(sql), params)
        return self._engine.json_from_rows(namespace, key, tail, rows)

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        """``PostgresStore.get`` on the event loop."""
        now = self._engine.clock()
        sql, params = self._engine.read_query(namespace, key, tail, now)
        rows = await self._fetch(pg_sql(sql), params)
        return self._engine.entry_from_rows(namespace, key, tail, rows)

    async def _fetch(self, sql: str, params: list[Any]) -> Rows:
        """One autocommit statement's rows, with the sync store's retries (``_run``)."""
        attempt = lost = 0
        while True:
            try:
                return await self._fetch_once(sql, params)
            except RETRYABLE as exc:  # e.g. a hot standby cancelling a conflicting query
                attempt += 1
                if attempt > self._retries:
                    raise kept_aborting(self._where, exc, self._retries) from exc
                await anyio.sleep(random.uniform(0, 0.001 * 2**attempt))
            except (PoolTimeout, PoolClosed) as exc:
                raise no_connection(self._where, exc) from exc
            except LOST as exc:
                lost += 1
                if lost > LOST_RETRIES:
                    raise request_failed(self._where, exc) from exc
                # The server may have restarted or failed over: drop every dead idle
                # connection before trying again, or the retry would likely get one.
                with contextlib.suppress(psycopg.Error):
                    await self._pool.check()

    async def _fetch_once(self, sql: str, params: list[Any]) -> Rows:
        left = await self._gate.acquire()
        try:
            # getconn/putconn, not connection(): an autocommit read has nothing to commit.
            conn = await self._pool.getconn(timeout=max(left, 0.001))
            try:
                cur = conn.cursor()
                await cur.execute(sql, params)
                # Rows are converted as they are fetched: in chunks, yielding to the loop in
                # between, so a 100k-item list does not stall other requests (issue 13: one
                # fetchall of 100k rows held the loop ~250 ms).
                rows = await cur.fetchmany(FETCH_CHUNK)
                while len(rows) % FETCH_CHUNK == 0 and rows:
                    more = await cur.fetchmany(FETCH_CHUNK)
                    if not more:
                        break
                    rows += more
                    await anyio.sleep(0)
                return rows
            finally:
                await self._pool.putconn(conn)
        finally:
            self._gate.release()


class _Gate:
    """At most ``size`` holders; the others wait in FIFO order, each for ``timeout`` s at most
    (then :class:`PoolTimeout`).

    Requests queue here, one future and one timer each, instead of in the pool, whose waiters
    cost a task each (``asyncio.wait_for``); ``asyncio.Semaphore`` has no timeout, and wrapping
    it in ``anyio.fail_after`` measured dearer than the pool's own queue.
    """

    def __init__(self, size: int, timeout: float) -> None:
        self._free = size  # > 0 only while nobody waits
        self._timeout = timeout
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> float:
        """Take a slot; returns how much of ``timeout`` is left for the pool's own wait."""
        if self._free:
            self._free -= 1
            return self._timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(self._timeout, self._expire, fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release()  # handed a slot as this request was cancelled: pass it on
            raise
        finally:
            timer.cancel()
        return self._timeout - (loop.time() - started)

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():  # skip the timed out and the cancelled
                fut.set_result(None)  # the slot goes straight to it
                return
        self._free += 1

    def _expire(self, fut: asyncio.Future[None]) -> None:
        if not fut.done():
            fut.set_exception(
                PoolTimeout(f"couldn't get a connection after {self._timeout:.2f} sec")
            )
