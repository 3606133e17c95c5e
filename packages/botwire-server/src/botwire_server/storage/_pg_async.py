"""PostgreSQL reads of single keys, and writes, on the event loop: no worker thread per request.

A GET is one autocommit statement, so it needs none of the write path's transaction machinery:
:class:`AsyncPgReader` runs the engine's read statement (``Engine.read_query``, the very SQL the
sync store runs) on a ``psycopg.AsyncConnection`` from a ``psycopg_pool.AsyncConnectionPool``
and hands the rows to the engine (``Engine.json_from_rows`` / ``entry_from_rows``). Measured
(``docs/server.md``, Performance): the thread hop, the pipeline loops and the GIL hand-offs of
the sync path cost more CPU than the query itself. Failures behave as on the sync path
(``PostgresStore._run``): a lost connection is retried on a fresh one (after dropping the
pool's dead connections), a pool wait longer than ``timeout`` is ``Unavailable``. Whole-value
reads that arrive while others are in flight go together in one statement (``_pg_reads``).

Writes (:meth:`AsyncPgReader.batch` of a batch that mutates) run the engine's plan
(``Engine.plan_apply``, the definition the sync store runs) under the async driver of
``_pg_write``, on a pool of their own (the store's ``max_size``), with
the sync path's retries: serialization failures and deadlocks, and a connection lost before
``COMMIT`` was sent (never after: the outcome is then unknown, ``Unavailable`` says so).
Concurrent writes of one namespace share a transaction (``_pg_group``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from botwire.store import Entry, Op
from botwire.store._sql import Engine, JSONEntry, fingerprint
from botwire.store._sqlctx import Carry
from botwire.store._sqlplan import Plan

from ._pg_common import STALE, Retry, generic_plans, no_connection, pg_sql
from ._pg_group import GroupedWrite, NamespaceGroups
from ._pg_prepare import Prepared
from ._pg_reads import MOST_PER_STATEMENT, ReadGroup, by_position, within
from ._pg_write import Query, WriteConnection, drive_async, rollback_async, write_async

__all__ = ["AsyncPgReader"]

Rows = list[tuple[Any, ...]]


#: Rows converted per step of a read on the event loop (see ``_fetch_once``).
FETCH_CHUNK = 5000
#: At most this many gets of a batch are read on the event loop (:meth:`AsyncPgReader.
#: read_batch_json`), in one statement as the coalesced GETs; more take the sync store's path,
#: in a worker thread.
BATCH_GETS = MOST_PER_STATEMENT
#: Writes (per reader) between purges of expired entries, as ``postgres._HOUSEKEEPING_EVERY``.
HOUSEKEEPING_EVERY = 512


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
        write_max_size: int = 0,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        """``write_max_size`` connections more serve :meth:`batch` (0: no writes here);
        ``housekeeping`` (sync, run in a worker thread) every :data:`HOUSEKEEPING_EVERY`
        writes."""
        self._engine = engine
        self._where = where
        self._retries = retries
        self._gate = _Gate(max_size, timeout)
        self._write_gate = _Gate(write_max_size, timeout)
        self.writes = write_max_size > 0
        self._housekeeping = housekeeping
        self._written = 0
        #: the writes' hot statements, prepared on each write connection (``_pg_prepare``);
        #: off behind a transaction-mode pooler, as psycopg's own (``prepare_threshold=None``)
        self.prepared = Prepared(enabled=connect_kwargs.get("prepare_threshold", 5) is not None)
        #: concurrent whole-value reads share one statement (``_pg_reads``)
        self.reads = ReadGroup(engine, self._fetch)
        #: concurrent writes of one namespace share one transaction (``_pg_group``)
        self.groups = NamespaceGroups(self._write, timeout=timeout, late=self._late)
        # prepare_threshold and the rest of the connect options (PgBouncer's
        # prepare_threshold=None included) are the sync pool's.
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs=connect_kwargs,
            configure=generic_plans if self.prepared.enabled else None,
            timeout=timeout,
            open=False,
            name="botwire-reads",
        )
        # Writes hold their connection for a transaction: a pool of their own (the store's
        # max_size), so a burst of writes never starves the reads, nor the reads the writes.
        self._wpool: AsyncConnectionPool[WriteConnection] | None = None
        if write_max_size:
            self._wpool = AsyncConnectionPool(
                dsn,
                connection_class=WriteConnection,
                min_size=min(min_size, write_max_size),
                max_size=write_max_size,
                # psycopg itself prepares nothing here (the writes are simple queries): had it
                # prepared a statement, the next ROLLBACK would make it send DEALLOCATE ALL,
                # which drops the writes' own statements (_pg_prepare) too.
                kwargs={**connect_kwargs, "prepare_threshold": None},
                timeout=timeout,
                open=False,
                name="botwire-writes",
            )

    async def open(self) -> None:
        """Start the pool (connections are made in the background, as the sync pool's are)."""
        await self._pool.open()
        if self._wpool is not None:
            await self._wpool.open()

    def _late(self, namespace: str, waited: float) -> Exception:
        """A write that waited ``waited`` s for the write of its namespace in flight."""
        return no_connection(
            self._where,
            PoolTimeout(
                f"a write of namespace {namespace!r} waited {waited:.2f} sec for the one in flight"
            ),
        )

    async def close(self) -> None:
        try:
            await self.groups.wait()  # the writes accepted are applied and answered
            if self._wpool is not None:
                await self._wpool.close()
        finally:
            await self._pool.close()

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None:
        """``PostgresStore.get_json`` on the event loop."""
        rows = await self._rows(namespace, key, tail)
        return self._engine.json_from_rows(namespace, key, tail, rows)

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        """``PostgresStore.get`` on the event loop."""
        rows = await self._rows(namespace, key, tail)
        return self._engine.entry_from_rows(namespace, key, tail, rows)

    async def read_batch_json(self, namespace: str, ops: Sequence[Op]) -> list[str] | None:
        """``PostgresStore.read_batch_json`` on the event loop, for a batch of at most
        :data:`BATCH_GETS` whole-value gets; ``None`` for any other (a ``tail``: the sync
        store's). The gets are one ``Engine.read_many_query`` statement: one snapshot, as the
        sync store's ``REPEATABLE READ`` transaction gives, in one round trip and no thread
        (measured under P10, a LangGraph ``get_tuple``'s batch: 1.0 ms of the server's time
        through the thread, ~0.47 here)."""
        if not _whole_gets(ops):
            return None
        engine = self._engine
        sql, params = engine.read_many_query([(namespace, op.key) for op in ops], engine.clock())
        found = by_position(await self._fetch(pg_sql(sql), params), len(ops))
        return self._texts(namespace, ops, found)

    async def read_batch_json_within(
        self, namespace: str, ops: Sequence[Op], budget: int
    ) -> tuple[int, list[str] | None] | None:
        """:meth:`read_batch_json` behind a response budget, in the same one statement
        (``Engine.read_many_within_query``): the bytes the gets answer, and their texts, or
        ``None`` for them when the bytes are over ``budget`` (nothing was read). ``None`` for a
        batch :meth:`read_batch_json` does not take. The budget looked up apart
        (:meth:`stored_bytes`) was a round trip of its own before every batch of gets."""
        if not _whole_gets(ops):
            return None
        engine = self._engine
        pairs = [(namespace, op.key) for op in ops]
        sql, params = engine.read_many_within_query(pairs, engine.clock(), budget)
        size, found = within(await self._fetch(pg_sql(sql), params), len(ops), budget)
        return size, None if found is None else self._texts(namespace, ops, found)

    def _texts(self, namespace: str, ops: Sequence[Op], found: list[Rows]) -> list[str]:
        result = self._engine.result_json_from_rows
        return [result(namespace, op, rows) for op, rows in zip(ops, found, strict=True)]

    async def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int:
        """``PostgresStore.stored_bytes`` on the event loop (a batch's response budget, checked
        before its gets are read): ``Engine.plan_stored_bytes`` driven as the writes' plans
        are, each statement through :meth:`_fetch`."""
        plan = self._engine.plan_stored_bytes(namespace, keys, self._engine.clock())
        return await drive_async(_Autocommit(self._fetch), plan)

    async def _rows(self, namespace: str, key: str, tail: int | None) -> Rows:
        """``read_query``'s rows; whole values through the :class:`ReadGroup`."""
        if tail is None:
            return await self.reads.rows(namespace, key)
        sql, params = self._engine.read_query(namespace, key, tail, self._engine.clock())
        return await self._fetch(pg_sql(sql), params)

    async def _fetch(self, sql: str, params: list[Any]) -> Rows:
        """One autocommit statement's rows, with the sync store's retries (``_run``)."""
        retry = Retry(self._where, self._retries)
        while True:
            try:
                return await self._fetch_once(sql, params)
            except Exception as exc:  # a race includes a hot standby cancelling the query
                await self._again(retry, exc, False, self._pool)

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
            except STALE:
                await conn.close()  # the pool replaces it; Retry runs the read again, once
                raise
            finally:
                await self._pool.putconn(conn)
        finally:
            self._gate.release()

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """``PostgresStore.batch`` of a batch that writes, on the event loop."""
        results = await self.groups.write(self.grouped(namespace, ops, atomic, idempotency_key))
        self._written += 1
        if self._housekeeping is not None and self._written % HOUSEKEEPING_EVERY == 0:
            await anyio.to_thread.run_sync(self._housekeeping)
        return results

    def grouped(
        self, namespace: str, ops: Sequence[Op], atomic: bool, idempotency_key: str | None
    ) -> GroupedWrite:
        """The write :meth:`batch` hands to its namespace's groups (``_pg_group``)."""
        engine = self._engine
        now = engine.clock()
        fp = fingerprint(ops, atomic) if idempotency_key is not None else None
        prefetch = engine.write_prefetch(namespace, ops, idempotency_key)

        def plan(held: bool = False, carry: Carry | None = None) -> Plan[list[dict[str, Any]]]:
            return engine.plan_apply(
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=idempotency_key,
                fingerprint=fp,
                now=now,
                held=held,
                carry=carry,
            )

        locks = engine.takes_lock(ops)
        oldest = None
        if locks and idempotency_key is not None:
            oldest = functools.partial(engine.oldest_query, namespace)
        return GroupedWrite(namespace, plan, prefetch, locks, oldest)

    async def _write(self, make: Callable[[], Plan[Any]], prefetch: Sequence[Query] | None) -> Any:
        """A fresh plan from ``make`` per attempt, with ``PostgresStore._run``'s retries.

        A statement the session lost (``STALE``; ``_write_once`` forgot what the connection
        held, so it is prepared again) is run again once, even from the batch holding
        ``COMMIT``: the failed statement stopped the rest of its simple query, so the
        ``COMMIT`` never ran."""
        retry = Retry(self._where, self._retries)
        while True:
            sent = [False]
            try:
                return await self._write_once(make(), prefetch, sent)
            except Exception as exc:
                await self._again(retry, exc, sent[0], self._wpool)

    @staticmethod
    async def _again(
        retry: Retry, exc: Exception, sent: bool, pool: AsyncConnectionPool[Any] | None
    ) -> None:
        """Wait before the next attempt as ``retry`` says, or raise what to answer."""
        step = retry.next(exc, sent=sent)
        if step is None:
            raise exc
        delay, check = step
        if delay:
            await anyio.sleep(delay)
        if check and pool is not None:
            with contextlib.suppress(psycopg.Error):
                await pool.check()

    async def _write_once(
        self, plan: Plan[Any], prefetch: Sequence[Query] | None, sent: list[bool]
    ) -> Any:
        pool = self._wpool
        assert pool is not None, "this reader was opened without writes"
        left = await self._write_gate.acquire()
        try:
            conn = await pool.getconn(timeout=max(left, 0.001))
            try:
                names = await self.prepared.ready(conn)
                return await write_async(conn, plan, sent, prefetch, self.prepared, names)
            except BaseException as exc:
                if isinstance(exc, STALE):
                    self.prepared.forget(conn)
                await rollback_async(conn)
                raise
            finally:
                await pool.putconn(conn)
        finally:
            self._write_gate.release()


class _Autocommit:
    """The ``all`` request of a read-only plan (``_sqlplan``), each statement on its own through
    ``AsyncPgReader._fetch`` (a pooled connection, the store's retries)."""

    __slots__ = ("_fetch",)

    def __init__(self, fetch: Callable[[str, list[Any]], Awaitable[Rows]]) -> None:
        self._fetch = fetch

    async def all(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return await self._fetch(pg_sql(sql), list(params))


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


def _whole_gets(ops: Sequence[Op]) -> bool:
    """Whether a batch of gets is read in one statement: at most :data:`BATCH_GETS`, no
    ``tail``."""
    return bool(ops) and len(ops) <= BATCH_GETS and all(op.tail is None for op in ops)
