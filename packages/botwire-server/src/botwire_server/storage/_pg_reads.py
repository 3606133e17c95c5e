"""Concurrent single-key reads to PostgreSQL, sent together: one statement for many GETs.

On the event loop a psycopg ``execute`` plus its fetch costs about 0.2 ms of the server's CPU
whatever the statement, more than PostgreSQL spends answering a primary-key read (measured,
docs/benchmarks-log.md). :class:`ReadGroup` sends a read at once when fewer than ``lanes``
statements are in flight; while they all are, reads that arrive wait and then go together, up
to ``most`` in one ``Engine.read_many_query`` statement (``unnest ... WITH ORDINALITY``), and
each gets back exactly the rows its own ``read_query`` would have returned. A read on a quiet
server is therefore sent alone, with no added wait; a busy server pays one ``execute`` for many.
Each read still happens after it arrived (the statement starts later), so a GET that follows
a finished write sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from botwire.store._sql import Engine

from ._pg_common import pg_sql

__all__ = ["MOST_PER_STATEMENT", "ReadGroup", "by_position", "within"]

Rows = list[tuple[Any, ...]]
Fetch = Callable[[str, list[Any]], Awaitable[Rows]]
#: Whole-value reads in one ``Engine.read_many_query`` statement at most (a :class:`ReadGroup`'s
#: coalesced GETs, and ``AsyncPgReader.read_batch_json``'s batch of gets).
MOST_PER_STATEMENT = 64


class ReadGroup:
    """Whole-value reads of single keys (``tail=None``), coalesced while the lanes are busy.

    ``fetch(sql, params)`` runs one autocommit statement with its retries and returns its rows
    (``AsyncPgReader._fetch``). A failure is every waiting read's failure.

    Example::

        group = ReadGroup(engine, reader._fetch)
        rows = await group.rows("user-42", "profile")   # read_query's rows for that key
    """

    def __init__(
        self, engine: Engine, fetch: Fetch, *, lanes: int = 2, most: int = MOST_PER_STATEMENT
    ) -> None:
        self._engine = engine
        self._fetch = fetch
        self._lanes = lanes
        self._most = most
        self._running = 0
        self._waiting: list[tuple[str, str, asyncio.Future[Rows]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: statements sent and reads answered (for the tests and the benchmark's evidence)
        self.statements = 0
        self.reads = 0

    async def rows(self, namespace: str, key: str) -> Rows:
        """``read_query(namespace, key, None, now)``'s rows, ``now`` being when they are read."""
        if self._running < self._lanes and not self._waiting:
            self._running += 1
            try:  # a free lane: this read goes now, in this task, alone
                return await self._one(namespace, key)
            finally:
                self._running -= 1
                self._start()
        fut: asyncio.Future[Rows] = asyncio.get_running_loop().create_future()
        self._waiting.append((namespace, key, fut))
        self._start()
        return await fut

    async def _one(self, namespace: str, key: str) -> Rows:
        sql, params = self._engine.read_query(namespace, key, None, self._engine.clock())
        self.statements += 1
        self.reads += 1
        return await self._fetch(pg_sql(sql), params)

    def _start(self) -> None:
        while self._waiting and self._running < self._lanes:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, str, asyncio.Future[Rows]]]) -> None:
        try:
            batch = [w for w in batch if not w[2].done()]  # cancelled while waiting
            if not batch:
                return
            try:
                if len(batch) == 1:
                    answers = [await self._one(batch[0][0], batch[0][1])]
                else:
                    answers = await self._many(batch)
            except BaseException as exc:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, _, fut), rows in zip(batch, answers, strict=True):
                if not fut.done():
                    fut.set_result(rows)
        finally:
            self._running -= 1
            self._start()

    async def _many(self, batch: list[tuple[str, str, asyncio.Future[Rows]]]) -> list[Rows]:
        engine = self._engine
        sql, params = engine.read_many_query([(ns, key) for ns, key, _ in batch], engine.clock())
        self.statements += 1
        self.reads += len(batch)
        return by_position(await self._fetch(pg_sql(sql), params), len(batch))


def by_position(rows: Rows, count: int) -> list[Rows]:
    """The rows of an ``Engine.read_many_query`` statement of ``count`` pairs, split by the
    pair's 1-based position (each row's first column): each pair's ``read_query`` rows."""
    answers: list[Rows] = [[] for _ in range(count)]
    for row in rows:
        answers[row[0] - 1].append(row[1:])
    return answers


def within(rows: Rows, count: int, budget: int) -> tuple[int, list[Rows] | None]:
    """The rows of an ``Engine.read_many_within_query`` statement of ``count`` pairs: the bytes
    they answer, and :func:`by_position`'s split of the rows read (``None``: over ``budget``,
    nothing was read)."""
    total = int(rows[0][-1])
    if total > budget:
        return total, None
    return total, by_position([row[:-2] for row in rows if row[0] is not None], count)
