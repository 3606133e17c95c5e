"""PostgreSQL writes on the event loop: the engine's plans (``botwire.store._sqlplan``) driven
over a ``psycopg.AsyncConnection``, no worker thread per write.

:class:`AsyncPgTx` queues the plan's statements and sends the queue in **one round trip**
whenever the plan needs a result: where statements are prepared (``_pg_prepare``), as one
pipeline of the extended protocol (``_pg_wait.pipelined``: each prepared statement with its
arguments bound in text form, :func:`arguments`), else (behind a transaction-mode pooler) as one
simple query (parameters bound client-side as psycopg's ``ClientCursor`` binds them: each is
``Transformer.as_literal``, each distinct value written once per transaction). Either way:
``BEGIN`` rides with the namespace lock (which allocates the transaction's version), the reads
the engine is known to issue (``Engine.write_prefetch``: the idempotency record, each key's
entry) are queued right behind the lock, and the writes ride with ``COMMIT``: two round trips
whatever the number of keys written, and few calls into the driver (psycopg's own pipeline,
through a cursor, flushes and polls at every ``execute``: measured, 630-642 µs of client CPU
per write against 275-303 µs for the simple query; the raw pipeline costs less than either).
The query goes out on the connection's libpq handle and its results are converted by a
``Transformer`` (both psycopg's, in C), not through a cursor: the cursor's bookkeeping (query
parsing, the prepare manager, column descriptions) was about a quarter of the server's CPU per
PostgreSQL write (py-spy), for statements that need none of it; and its answer is awaited by
``_pg_wait.results``, not psycopg's general wait loop (12 µs less per round trip). The
write pool's connections (:class:`WriteConnection`) each keep their ``Transformer`` for
all their transactions (:func:`transformer`).
A statement that a later one of the same send overwrites whole is left out (the engine
declares which do: ``OVERWRITES``, ``BLIND_WRITES``): a group's calls on one list store its entry
and the statistics once per round trip (:meth:`AsyncPgTx.send`).
The most used statements are prepared on the connection (``_pg_prepare``; off behind a
transaction-mode pooler) and bound in the pipeline, which spares PostgreSQL the parsing and the
literals' coercion of ``EXECUTE name(literals)`` (what a simple query of them was, until
2026-12-05). A prefetched result is handed out once, for the identical query
(``write_prefetch`` says why it is still true then).
A store used without a server (``PostgresStore``) sends its ``pg_notify`` (the watch's
channel, ``botwire_server.watch``) behind the ``COMMIT``, in the same round trip: PostgreSQL
runs it in a transaction of its own once the write has committed, which needs no WAL flush
(measured: ~17 µs more than a ``SELECT 1``), so servers' watchers wake on those writes too.
:func:`drive_async` is :func:`botwire.store._sqlplan.drive` with ``await``: the very plan the
sync store runs (``Engine.plan_apply``), so every operation keeps one definition.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import abc
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus, TransactionStatus

from botwire._errors import BotWireError
from botwire.store._sqlplan import Plan
from botwire.store._sqltext import (
    BLIND_WRITES,
    GROUP_RELEASE_SQL,
    GROUP_ROLLBACK_SQL,
    GROUP_SAVEPOINT_SQL,
    OVERWRITES,
    RELEASE_SQL,
    ROLLBACK_SQL,
    SAVEPOINT_SQL,
)

from ._pg_bind import arguments, execute_template, literals, template
from ._pg_listen import NotifyGate
from ._pg_prepare import Prepared
from ._pg_tx import BEGIN_WRITE, NEXTVAL, NEXTVAL_SERIES
from ._pg_wait import Statement, pipelined
from ._pg_wait import results as wait_results

__all__ = [
    "AsyncPgTx",
    "BlockingWriteConnection",
    "WriteConnection",
    "drive_async",
    "rollback_async",
    "transformer",
    "write_async",
]

log = logging.getLogger("botwire_server.store")
T = TypeVar("T")
Query = tuple[str, tuple[Any, ...]]
#: the event loop's connections, or a synchronous one for :func:`blocking`
AnyConnection: TypeAlias = "psycopg.AsyncConnection[Any] | psycopg.Connection[Any]"
Rows = list[tuple[Any, ...]]
#: a queued statement: its text, or (pipeline mode) a prepared statement's name, its arguments
#: and the parameters they were written from (:meth:`AsyncPgTx.queued_texts`)
Queued: TypeAlias = "bytes | tuple[bytes, list[bytes | None], Sequence[Any]]"


class WriteConnection(psycopg.AsyncConnection[Any]):
    """A connection that keeps one ``Transformer`` for its transactions (:func:`transformer`):
    the write pool's (``AsyncPgReader``) and the watch hub's notify connection.

    Example::

        conn = await WriteConnection.connect(dsn, autocommit=True)
        tx = AsyncPgTx(conn)   # its statements' literals and rows through conn's Transformer
    """

    _botwire_transformer: abc.Transformer | None = None


class BlockingWriteConnection(psycopg.Connection[Any]):
    """:class:`WriteConnection` for a store's writes without an event loop (:func:`blocking`):
    the pool of ``PostgresStore``."""

    _botwire_transformer: abc.Transformer | None = None


def transformer(conn: AnyConnection) -> abc.Transformer:
    """``conn``'s ``Transformer``: a :class:`WriteConnection`'s, made once, else a new one.

    A transformer finds the loader of each column type of a result and the dumper of each
    Python type it writes once, in Python (psycopg's ``AdaptersMap``), and then keeps them:
    measured, a result of 10 columns converted in 4.2 µs by a new one against 1.7 µs by one
    that has seen the types. A connection runs one transaction at a time, and its transformer
    keeps nothing of one for the next but those caches (:meth:`AsyncPgTx.send` lets go of the
    last result)."""
    if not isinstance(conn, WriteConnection | BlockingWriteConnection):
        return Transformer(conn)
    tx = conn._botwire_transformer
    if tx is None:
        tx = conn._botwire_transformer = Transformer(conn)
    return tx


class AsyncPgTx:
    """A transaction's statements on one ``AsyncConnection``, queued and sent together (see
    module)."""

    __slots__ = (
        "_conn",
        "_floats",
        "_literals",
        "_mark",
        "_names",
        "_pipeline",
        "_plan",
        "_prefetched",
        "_prepared",
        "_queue",
        "_reserve",
        "_saved",
        "_tx",
        "_versions",
        "failed_last",
    )

    def __init__(
        self,
        conn: AnyConnection,
        *,
        prefetch: Sequence[Query] | None = None,
        prepared: Prepared | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        """``names``: the statements prepared on ``conn`` (``Prepared.ready``), sent as
        ``EXECUTE``; ``prepared`` counts the uses of the others."""
        self._conn = conn
        self._tx = transformer(conn)
        self._prepared = prepared
        self._names = names or {}
        #: sent in pipeline mode (``_pg_wait.pipelined``): where statements are prepared, whose
        #: arguments then go bound, not as literals (never behind a transaction-mode pooler)
        self._pipeline = prepared is not None and prepared.enabled
        self._plan = prefetch
        #: why the last statement of a ``send(optional_last=True)`` failed (``None``: it ran)
        self.failed_last: psycopg.Error | None = None
        #: each statement queued, and what it writes (``_row_of``: the row it overwrites
        #: whole, ``_BLIND`` or ``None``, anything else; see :meth:`send`)
        self._queue: list[tuple[Queued, object]] = []
        #: the literals written so far (``literals``): a write repeats its namespace, keys,
        #: versions and time in several statements
        self._literals: dict[tuple[type, Any], bytes] = {}
        #: the floats' texts written so far, as arguments or literals (``_pg_bind``)
        self._floats: dict[float, bytes] = {}
        self._prefetched: dict[Query, Rows] = {}
        #: where a grouped call's statements start in the queue (``mark``), and whether its
        #: savepoint was put there (they had to be sent before the call ended)
        self._mark: int | None = None
        self._saved = False
        #: versions to allocate behind the next lock (``reserve``), and those allocated
        self._reserve = 0
        self._versions: collections.deque[int] = collections.deque()

    def queue(self, sql: str | bytes, params: Sequence[Any] = ()) -> int:
        """Queue a statement (the engine's ``?`` placeholders); its index in the next send."""
        if not params:  # sent as it is: pg_sql's %% would stay doubled
            text = sql if isinstance(sql, bytes) else sql.encode()
            self._queue.append((text, _BLIND if text in _RELEASES else None))
            return len(self._queue) - 1
        if isinstance(sql, bytes):
            sql = sql.decode()
        if (name := self._names.get(sql)) is not None:
            if self._pipeline:
                bound = (name.encode(), arguments(self._tx, params, self._floats), params)
                self._queue.append((bound, _row_of(sql, params)))
                return len(self._queue) - 1
            form = execute_template(name, len(params))
        else:
            if self._prepared is not None:
                self._prepared.used(sql)
            form = template(sql)
        text = form % literals(self._tx, params, self._literals, self._floats)
        self._queue.append((text, _row_of(sql, params)))
        return len(self._queue) - 1

    async def send(self, *, optional_last: bool = False) -> list[Rows | None]:
        """Send the queue in one round trip (module docstring): each statement's rows
        (``None``: no rows); the first statement PostgreSQL refused raises its
        ``psycopg.Error``, as a cursor would, except the last one when ``optional_last`` (a
        ``NOTIFY`` after ``COMMIT``: everything before it succeeded, PostgreSQL skips what
        follows a refused statement), which is answered ``None`` and its error kept in
        :attr:`failed_last`.

        A statement that a later one of the same send overwrites whole is left out (its
        result is ``None``, as a write's is): a group's calls on one list (or one key) each
        store its entry and their namespace's statistics, and only the last of each is
        seen, even inside the transaction, unless a statement between them could read it
        (anything but the engine's ``BLIND_WRITES`` and a released savepoint) or undo the
        later one (a savepoint set or rolled back to)."""
        queue, self._queue = self._queue, []
        if not queue:
            return []
        dropped = _superseded(queue)
        conn, tx = self._conn, self._tx
        if self._pipeline:
            answers = await pipelined(conn, _statements(queue, dropped))
        else:
            conn.pgconn.send_query(self._outgoing(queue, dropped))
            answers = await wait_results(conn)
        results: list[Rows | None] = []
        last = len(queue) - len(dropped) - 1 if optional_last else -1
        try:
            for res in answers:
                status = res.status
                if status == ExecStatus.TUPLES_OK:
                    tx.set_pgresult(res)
                    results.append(tx.load_rows(0, res.ntuples, tuple))
                elif status == ExecStatus.FATAL_ERROR:
                    error = error_from_result(res, encoding=tx.encoding)
                    if len(results) != last:
                        raise error
                    self.failed_last = error
                    results.append(None)
                else:  # no rows, or (``PIPELINE_ABORTED``) skipped after a refused one
                    results.append(None)
        finally:
            # the connection's transformer outlives the transaction: it must not keep the last
            # result (a value of up to the size limit) alive on an idle pooled connection
            tx.set_pgresult(None)
        for i in dropped:  # ascending: each lands where its statement stood
            results.insert(i, None)
        return results

    def queued_texts(self) -> list[bytes]:
        """What is queued, each statement as a simple query would send it (a bound one as
        ``EXECUTE name(literals)``): for tests and logs, whichever way :meth:`send` sends.

        Example::

            tx.queue("SELECT ?", (1,))
            tx.queued_texts() == [b"SELECT 1"]
        """
        return [
            item
            if isinstance(item, bytes)
            else execute_template(item[0].decode(), len(item[2])) % literals(self._tx, item[2], {})
            for item, _ in self._queue
        ]

    async def rollback(self) -> None:
        """Roll the transaction back; what is still queued is dropped. Sent as the writes are:
        psycopg answers a ``ROLLBACK`` run through its cursor with ``DEALLOCATE ALL`` when it
        has prepared statements of its own (a store's reads), which would drop the writes'
        (``_pg_prepare``) too."""
        self._queue = []
        self.queue(b"ROLLBACK")
        await self.send()

    @staticmethod
    def _outgoing(queue: list[tuple[Queued, object]], dropped: list[int]) -> bytes:
        """The simple query :meth:`send` sends: :func:`_statements` joined (outside pipeline
        mode each is a statement's whole text)."""
        return b"; ".join([text for text, _ in _statements(queue, dropped)])

    def _fresh(self) -> None:
        """Prefetching rides only with the first statement, the lock."""
        self._plan = None

    async def _rows(self, sql: str, params: Sequence[Any]) -> Rows:
        hit = self._prefetched.pop((sql, tuple(params)), None)
        if hit is not None:
            return hit
        self._fresh()
        self._leaving()  # before queueing: a savepoint put in would move the read's index
        at = self.queue(sql, params)
        return (await self.send())[at] or []

    async def lock(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The namespace lock (``Tx.lock``, which allocates the version too): the planned reads
        are queued right behind it, so they share its round trip and run once it is granted.
        A held lock's read sent ahead with several namespaces' locks (``_pg_plans.multi_plan``)
        is handed out as the reads are."""
        hit = self._prefetched.pop((sql, tuple(params)), None)
        if hit is not None:
            return hit[0] if hit else None
        plan = self._plan
        self._fresh()
        self._versions.clear()  # allocated behind a lock its rollback may have released
        at = self.queue(sql, params)
        reserved, self._reserve = self._reserve, 0
        early, versions = self._queue_ahead(plan or (), reserved)
        self._leaving(reads=True)
        results = await self.send()
        self._keep_ahead(results, early, versions)
        rows = results[at]
        return rows[0] if rows else None

    async def ahead(self, queries: Sequence[Query], versions: int) -> None:
        """The reads of calls that joined a transaction holding its namespace's lock, and
        ``versions`` new versions for them (``_pg_plans.lone_plan``), sent now, behind what is
        queued (the writes of the calls applied so far): the reads see those writes, the
        versions follow them, and the calls read nothing more."""
        self._fresh()
        self._leaving()
        early, at = self._queue_ahead(queries, versions)
        results = await self.send()
        self._prefetched = {}  # what the lock read ahead is older than the writes just sent
        self._keep_ahead(results, early, at)

    def _queue_ahead(
        self, queries: Sequence[Query], versions: int
    ) -> tuple[list[tuple[Query, int]], int | None]:
        """Queue reads ahead and ``versions`` new versions: each read with its index, and the
        versions' index (``None``: none asked)."""
        early = [((query, args), self.queue(query, args)) for query, args in queries]
        return early, self.queue(NEXTVAL_SERIES, (versions,)) if versions else None

    def _keep_ahead(
        self, results: list[Rows | None], early: list[tuple[Query, int]], versions: int | None
    ) -> None:
        """Keep what :meth:`_queue_ahead` queued: the reads, handed out once each, and the
        versions, for :meth:`version`."""
        for key, i in early:
            self._prefetched[key] = results[i] or []
        if versions is not None:
            self._versions.extend(int(row[0]) for row in results[versions] or ())

    async def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return await self._rows(sql, params)

    async def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._fresh()
        self.queue(sql, params)

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._fresh()
        for row in rows:
            self.queue(sql, row)

    async def prefetch(self, queries: Sequence[Query]) -> None:
        """The reads the next lock carries (a grouped call's, ``_pg_plans``): what an earlier
        call left unread is dropped with it."""
        self._plan, self._prefetched = queries, {}

    async def mark(self) -> None:
        """A grouped call starts on the namespace lock its transaction holds (``_pg_plans``):
        its lock is a read, so if it is refused while its writes are all still queued, they
        are dropped (:meth:`unmark`) and it needs no ``SAVEPOINT bw_req``; one is put before
        them only if they must be sent before the call ends (it reads what it has not
        prefetched)."""
        self._mark, self._saved = len(self._queue), False

    def _leaving(self, reads: bool = False) -> None:
        """The queue is about to be sent: a marked call's statements in it get their savepoint,
        unless they are only its lock and its reads (``reads``)."""
        if self._mark is None or self._saved:
            return
        if reads:
            self._mark = 0  # what it queues next is all the queue will hold
        else:
            self._queue.insert(self._mark, (_SAVEPOINT, None))
            self._saved = True

    async def unmark(self, refused: bool) -> None:
        """The marked call ended: a refused one's statements are undone (dropped, or rolled
        back to their savepoint)."""
        mark, self._mark = self._mark, None
        if mark is None:
            return
        if self._saved:
            if refused:
                self._queue.append((_ROLLBACK, None))
            self._queue.append((_RELEASE, _BLIND))
        elif refused:
            del self._queue[mark:]

    async def savepoint(self) -> None:
        self._fresh()
        self.queue(SAVEPOINT_SQL)

    async def rollback_savepoint(self) -> None:
        await self.run(ROLLBACK_SQL)

    async def release_savepoint(self) -> None:
        await self.run(RELEASE_SQL)

    async def reserve(self, count: int) -> None:
        """Allocate ``count`` versions right behind the next lock (a group's calls after its
        first, ``_pg_plans``): granted once the lock is, so they follow the commit order of
        the namespace's transactions as a version allocated later would."""
        self._reserve = count

    async def version(self) -> int:
        """A new version (the plan's ``"version"`` request, for a transaction whose lock did
        not allocate one): a reserved one (:meth:`reserve`), else the sequence
        ``bw_version``."""
        if self._versions:
            return self._versions.popleft()
        self._fresh()
        self._leaving()
        at = self.queue(NEXTVAL)
        return int((await self.send())[at][0][0])  # type: ignore[index]


#: a statement of the engine's ``BLIND_WRITES`` (``AsyncPgTx.send``)
_BLIND = object()
#: a savepoint released undoes nothing: what ran in it stays, as what runs after it does (a
#: ``SAVEPOINT`` or ``ROLLBACK TO`` between two overwrites keeps both)
_RELEASES = frozenset({GROUP_RELEASE_SQL.encode(), RELEASE_SQL.encode()})


def _row_of(sql: str, params: Sequence[Any]) -> object:
    """What a queued statement writes, for :func:`_superseded`: ``(sql, *its row's key)``
    for an overwrite, ``_BLIND``, or ``None``."""
    if (names := OVERWRITES.get(sql)) is not None:
        return (sql, *params[names])
    return _BLIND if sql in BLIND_WRITES else None


def _statements(queue: list[tuple[Queued, object]], dropped: list[int]) -> list[Statement]:
    """What :meth:`AsyncPgTx.send` sends: ``queue`` without the statements ``dropped``, each a
    statement's text (and ``None``) or a prepared statement's name and arguments."""
    left = set(dropped)
    return [
        (item, None) if isinstance(item, bytes) else (item[0], item[1])
        for i, (item, _) in enumerate(queue)
        if i not in left
    ]


def _superseded(queue: list[tuple[Queued, object]]) -> list[int]:
    """The statements (ascending) whose row a later statement overwrites whole with only
    blind writes between them (``AsyncPgTx.send``)."""
    later: set[object] = set()
    dropped: list[int] = []
    for i in range(len(queue) - 1, -1, -1):
        row = queue[i][1]
        if row is None:  # it may read or undo anything: what comes before it is kept
            later.clear()
        elif row is _BLIND:
            continue
        elif row in later:
            dropped.append(i)
        else:
            later.add(row)
    dropped.reverse()
    return dropped


_SAVEPOINT = GROUP_SAVEPOINT_SQL.encode()
_ROLLBACK = GROUP_ROLLBACK_SQL.encode()
_RELEASE = GROUP_RELEASE_SQL.encode()


async def drive_async(tx: Any, plan: Plan[T]) -> T:
    """``botwire.store._sqlplan.drive`` on the event loop: each request is the awaited method
    of its name on ``tx`` (an :class:`AsyncPgTx`, or a reader's ``_Autocommit``); a failed
    statement is thrown into the plan."""
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
    conn: AnyConnection,
    plan: Plan[T],
    sent: list[bool],
    prefetch: Sequence[Query] | None = None,
    prepared: Prepared | None = None,
    names: dict[str, str] | None = None,
    notify: tuple[str, tuple[Any, ...]] | None = None,
    gate: NotifyGate | None = None,
) -> T:
    """``plan`` in one READ COMMITTED transaction on ``conn`` (autocommit), its statements sent
    in batches (:class:`AsyncPgTx`); a refused operation is rolled back. ``sent[0]`` is set once
    the batch holding ``COMMIT`` may have reached the server (the outcome is unknown from then
    on: the writes queued before it ride in the same batch). ``notify`` (a statement and its
    parameters) rides behind ``COMMIT`` in the same round trip, run only once the write has
    committed; its failure is logged (once per ``gate`` when PostgreSQL refuses the
    privilege), never the write's."""
    tx = AsyncPgTx(conn, prefetch=prefetch, prepared=prepared, names=names)
    tx.queue(BEGIN_WRITE)
    try:
        result = await drive_async(tx, plan)
    except BotWireError:
        # Refused by the engine: what is still queued is dropped, what was sent rolled back.
        if conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await tx.rollback()
        raise
    sent[0] = True
    tx.queue(b"COMMIT")
    if notify is None:
        await tx.send()
    else:  # its own transaction, once the write's has committed (module docstring)
        tx.queue(*notify)
        await tx.send(optional_last=True)
        error = tx.failed_last
        if gate.settle(error) if gate is not None else error is not None:
            log.warning(
                "botwire: a write committed, but its NOTIFY failed (%s); other processes' "
                "watchers see it when they re-read",
                error,
            )
    return result


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run to its end, in the calling thread, a coroutine of this module on a synchronous
    connection: it never suspends (its waits are psycopg's blocking ones, ``_pg_wait.results``),
    so the event loop's write path serves a store without a server unchanged.

    Example (``PostgresStore.batch``)::

        result = blocking(write_async(conn, plan, sent, prefetch))
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        value: T = stop.value
        return value
    coro.close()
    raise RuntimeError("botwire: a blocking write waited for an event loop")


async def rollback_async(conn: psycopg.AsyncConnection[Any]) -> None:
    """Roll back what a failed write left open, else the pool discards the connection."""
    if conn.closed or conn.broken:
        return
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with contextlib.suppress(psycopg.Error):
            await conn.execute("ROLLBACK")
