"""The PostgreSQL store: any number of server replicas share one database.

Every operation's semantics live in :class:`botwire.store.Engine` (shared with the embedded SQLite
store); this module only supplies transactions, versions and the schema:

- **Transactions.** Writes run under ``READ COMMITTED``; their first statement is the engine's
  upsert of the namespace's ``bw_namespaces`` row, whose ``ON CONFLICT DO UPDATE`` takes that
  row's lock, so the writes of one namespace are serialized across connections *and* replicas
  while each later statement sees everything committed before the lock was granted. A batch of
  whole-value ``get`` is one statement (one snapshot), as a server's; with a ``tail`` it runs in
  ``REPEATABLE READ READ ONLY``; a single ``get`` or a listing is one statement.
  Serialization failures and deadlocks are retried; connection failures raise
  :class:`~botwire.Unavailable` with the driver's exception as ``__cause__``.
- **Versions** come from the sequence ``bw_version``, so they are unique and increasing across
  the whole database, and a key deleted and created again never reuses one.
- **Keys** are ``TEXT COLLATE "C"``: in a UTF8 database that orders (and range-compares) by UTF-8
  bytes, like SQLite. A database with another encoding is refused at start.
- **Schema** is created or migrated at start inside a transaction holding
  ``pg_advisory_xact_lock``, so replicas starting together do not trip over each other
  (``_pg_schema``).
- **Round trips** are kept low (psycopg's pipeline mode in :class:`PgTx`, one simple query
  per round trip in ``_pg_write``): statements whose results the engine does not read are
  queued and sent with the next one it does read, ``BEGIN`` travels with the first statement
  and ``COMMIT`` with the last, and the sequence value, the idempotency record and the first
  op's entry are fetched together with the namespace lock.
  Counted on the wire: ``get``, ``tail``, a listing and a batch of any number of ``get``: 1;
  ``set``/``append``/``incr``/``delete``: 2; ``pop`` or ``append`` that trims: 3
  (``tests/postgres/test_roundtrips.py``).
- **Where writes run.** The engine's write path is a sans-I/O plan (``Engine.plan_apply``),
  driven by ``_pg_write`` (each round trip's statements sent as one simple query, the hot
  ones prepared, ``_pg_prepare``). :meth:`batch` runs it in the calling thread on a pooled
  connection (``_pg_write.blocking``: the coroutine never suspends); with
  ``async_writes=True`` a server's writes run the same coroutine on the event loop through
  :meth:`async_reader`. ``botwire-server`` turns that on (unless
  ``BOTWIRE_PG_ASYNC_WRITES=0``): 1.6-2.3x the thread pool's writes per second on a quiet
  2-core machine (``docs/design.md`` §6). Other writes (``clear``, housekeeping) run the
  engine's methods on a pipelined :class:`PgTx`.
- **Watch.** Used without a server (``notify=True``, the default), each write sends the
  watch's ``pg_notify`` behind its ``COMMIT`` (same round trip) and ``clear`` right after
  its own, so servers' watchers on the same database wake on these writes as on another
  replica's. A server opens its store with ``notify=False``: its watch hub sends them,
  coalesced. A ``changes(wait=)`` on the store (``Memory.watch`` without a server) is woken by
  ``LISTEN`` on a connection of its own (``_pg_watch``; ``listen_url`` behind a pooler).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from botwire import _fork
from botwire._errors import BotWireError, InvalidArgument, StorageFull, Unavailable
from botwire._names import check_key, check_namespace
from botwire.store import Entry, KeyPage, Limits, Op, Policy, Usage
from botwire.store._sql import PG_OCTETS, Engine, JSONEntry, fingerprint

from ..watch import CHANNEL, NOTIFY_SQL
from ._pg_common import STALE, Retry, pg_sql, reason, where
from ._pg_listen import notice
from ._pg_prepare import Prepared
from ._pg_reads import MOST_PER_STATEMENT, by_position
from ._pg_schema import SCHEMA_VERSION, migrate
from ._pg_tx import BEGIN_WRITE, VERSION_SQL, PgTx, next_version
from ._pg_watch import BEGIN_READ, WATCH_POLL, PgWatch, Wakes, check_listen_url
from ._pg_write import BlockingWriteConnection, blocking, write_async

if TYPE_CHECKING:
    from ._pg_async import AsyncPgReader

__all__ = ["SCHEMA_VERSION", "WATCH_POLL", "PostgresStore"]

T = TypeVar("T")
log = logging.getLogger("botwire_server.store")

_HOUSEKEEPING_EVERY = 512  # write transactions (per store) between purges of expired entries
PURGE_BATCH = 100  # namespaces per batch of purge_expired() (one transaction each)


def _no_offset() -> float:
    return 0.0


def _rollback(conn: psycopg.Connection[Any]) -> bool:
    """Roll back what a failed transaction left open (else the pool discards the connection);
    whether a ``ROLLBACK`` went through psycopg."""
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")
        return True
    return False


class PostgresStore(PgWatch):
    """A :class:`~botwire.store.Store` on PostgreSQL, shared by any number of processes/replicas.

    Example::

        from botwire import Limits, Memory
        from botwire_server.storage.postgres import PostgresStore

        store = PostgresStore("postgresql://botwire@db:5432/botwire",
                              limits=Limits(writes_per_day=1000), max_size=20)
        memory = Memory("user-42", store=store)
        memory.append("chat", {"role": "user", "text": "hi"}, max_len=100)
        store.close()

    Times (TTLs, ``created_at``/``updated_at``, quota days, idempotency ages) come from the
    database's clock, in the statements that use them, so replicas whose clocks disagree still
    agree on them; ``clock_offset`` returns seconds added to that time (the server's testing
    clock). ``clock`` replaces the database's clock with this process's (tests inject one to
    move time; replicas then disagree as their clocks do). ``timeout``
    is how long to wait for a pooled connection; ``connect_timeout`` bounds each new
    connection (and start-up); ``retries`` is how often a transaction that lost a serialization
    race or a deadlock is run again. ``read_max_size`` (default ``max_size // 2``, at least 1)
    bounds the pool of :meth:`async_reader`, which a server opens next to this one: up to
    ``max_size + read_max_size`` connections in all. ``async_writes=True`` (the server's
    default; ``BOTWIRE_PG_ASYNC_WRITES=0`` turns it off) also runs a server's writes on the
    event loop, through the reader, on a write pool of ``max_size`` more connections (up to
    ``2 * max_size + read_max_size``); off by default here, for a store used without a server's
    event loop (see ``docs/design.md``, issue 22). ``notify`` (default ``True``) makes each
    write wake servers' watchers of its namespace (module docstring, **Watch**); a server
    opens its store with ``False``. ``listen_url`` (default: ``dsn``) is where a waiting
    ``changes`` (``Memory.watch``, a queue's waiting claim) listens for other processes'
    writes: give a direct URL when ``dsn`` goes through a transaction-mode pooler, where a
    ``LISTEN`` is lost (waits then re-read every 50 ms). Extra keyword arguments go to both pools'
    ``psycopg.connect`` (e.g. ``sslmode="require"``, ``prepare_threshold=None`` behind PgBouncer).
    """

    keys_clears = True  # clear(idempotency_key=) records its answer (ThreadedAsyncStore.clear)

    def __init__(
        self,
        dsn: str,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        clock_offset: Callable[[], float] | None = None,
        min_size: int = 1,
        max_size: int = 10,
        # Well inside a client's per-attempt timeout (10 s by default): with the database down
        # a request gets its 503 "unavailable" in time to be retried, not a client timeout.
        timeout: float = 5.0,
        connect_timeout: float = 10.0,
        retries: int = 5,
        read_max_size: int | None = None,
        async_writes: bool = False,
        notify: bool = True,
        listen_url: str | None = None,
        **connect_kwargs: Any,
    ) -> None:
        check_listen_url(listen_url)
        if read_max_size is None:
            # A read holds its connection for one round trip and no thread waits with it:
            # measured, 4 in flight serve one event loop as fast as 10 (docs/server.md).
            read_max_size = max(1, max_size // 2)
        if not 0 <= min_size <= max_size or max_size < 1 or read_max_size < 1:
            raise InvalidArgument(
                f"botwire: pool sizes min_size={min_size}, max_size={max_size}, "
                f"read_max_size={read_max_size}; use 0 <= min_size <= max_size, "
                "max_size >= 1 and read_max_size >= 1."
            )
        self.dsn = dsn
        if clock is None:
            # The database's clock: every replica agrees on "now" whatever its own clock says
            # (TTLs, quota days, idempotency ages). self.clock then returns only the offset
            # added to the database's time (see Engine's db_clock).
            offset = clock_offset or _no_offset
            self.clock: Callable[[], float] = lambda: float(offset())
        else:
            self.clock = clock
        self.engine = Engine(
            limits=limits or Limits(),
            clock=self.clock,
            next_version=next_version,
            db_clock=clock is None,
            octets=PG_OCTETS,
            version_sql=VERSION_SQL,
            hashed_items=True,  # bw_items_list (schema 7)
        )
        self._where = where(dsn)
        self._retries = retries
        self._writes = 0
        self._read_sizes = (min(min_size, read_max_size), read_max_size)
        self._max_size = max_size
        self.async_writes = async_writes
        #: whether writes send the watch's ``pg_notify`` themselves (a server's hub does it)
        self.notify = notify
        self._timeout = timeout
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "client_encoding": "UTF8",
            "application_name": "botwire",
            "connect_timeout": max(1, round(connect_timeout)),
            **connect_kwargs,
        }
        # One direct connection first: it gives a precise error (the pool only times out) and
        # runs the migration before the pool opens.
        try:
            conn = psycopg.connect(dsn, **kwargs)
        except psycopg.ProgrammingError as exc:  # a malformed URL or option
            raise InvalidArgument(
                f"botwire: cannot use the PostgreSQL URL or options given: {reason(exc)}; use "
                "postgresql://user:password@host:port/dbname.",
            ) from exc
        except psycopg.Error as exc:
            raise Unavailable(
                f"botwire: cannot connect to {self._where}: {reason(exc)}."
                " Check the URL, that the server runs, and the credentials.",
            ) from exc
        with conn:
            try:
                migrate(conn, self._where)
            except psycopg.Error as exc:
                raise Unavailable(
                    f"botwire: cannot create or upgrade the schema on {self._where}: "
                    f"{reason(exc)}. The role needs CREATE on the database's schema.",
                ) from exc
        self._connect_kwargs = kwargs
        self._wakes = Wakes(listen_url or dsn, dsn, kwargs)
        self._pool_sizes = (min_size, max_size)
        self._pool = self._new_pool()
        self._closed = self._reopen = False
        self._reopen_lock = threading.Lock()
        #: the writes' hot statements, prepared on each connection (``_pg_prepare``); off
        #: behind a transaction-mode pooler, as psycopg's own (``prepare_threshold=None``)
        self._prepared = Prepared(enabled=kwargs.get("prepare_threshold", 5) is not None)
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a forked child (gunicorn ``--preload``, ``multiprocessing``, Celery's prefork
        pool): the parent's pooled connections share their sockets with the parent, and
        closing one would send the parent's session a ``Terminate``; the pool is kept aside
        untouched (its threads did not survive the fork) and the child opens its own."""
        _fork.abandon(self._pool)
        _fork.abandon(self._wakes)  # the parent's listener: its connection is the parent's
        self._wakes = self._wakes.fresh()
        # Opened on first use: a child that never touches the store opens no connection.
        self._pool = self._new_pool(open_=False)
        self._reopen_lock = threading.Lock()
        self._reopen = not self._closed  # closed in the parent: it stays closed here

    def _opened_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._reopen:  # the first call in a forked child
            with self._reopen_lock:
                if self._reopen:
                    self._pool.open()
                    self._reopen = False
        return self._pool

    def _new_pool(self, *, open_: bool = True) -> ConnectionPool[psycopg.Connection[Any]]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.dsn,
            min_size=self._pool_sizes[0],
            max_size=self._pool_sizes[1],
            kwargs=self._connect_kwargs,
            timeout=self._timeout,
            open=False,
            name="botwire",
            connection_class=BlockingWriteConnection,  # keeps its Transformer for the writes
        )
        if open_:
            pool.open()
        return pool

    @property
    def limits(self) -> Limits:
        return self.engine.limits

    # -- transactions ------------------------------------------------------------------------

    def _run(self, body: Callable[[psycopg.Connection[Any], list[bool]], T]) -> T:
        """Run ``body`` on a pooled connection, again after a serialization failure or deadlock,
        and again (twice at most) after a lost connection if ``body`` had not yet sent its
        ``COMMIT``: the server rolls back what it had not committed. Once ``body`` has set
        ``sent[0]`` the outcome is unknown and never retried."""
        retry = Retry(self._where, self._retries)
        while True:
            sent = [False]
            try:
                with self._opened_pool().connection() as conn:
                    try:
                        return body(conn, sent)
                    except BaseException as exc:
                        if isinstance(exc, STALE):
                            conn.close()  # the pool replaces it: a fresh session, nothing cached
                        if _rollback(conn):
                            # psycopg may answer it with DEALLOCATE ALL: the writes prepare
                            # their statements on this connection again
                            self._prepared.forget(conn)
                        raise
            except Exception as exc:
                step = retry.next(exc, sent=sent[0])
                if step is None:
                    raise
                delay, check = step
                if delay:
                    time.sleep(delay)
                if check:
                    with contextlib.suppress(psycopg.Error):
                        self._pool.check()

    def _write(self, fn: Callable[[PgTx], T]) -> T:
        """``fn`` in one READ COMMITTED transaction, pipelined: BEGIN rides with the first
        statement and COMMIT with the last queued ones."""

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> T:
            with conn.pipeline():
                conn.execute(BEGIN_WRITE)
                try:
                    result = fn(PgTx(conn))
                except BotWireError:
                    # A refused operation (conflict, quota...): roll back in the same round trip.
                    with contextlib.suppress(psycopg.Error):
                        conn.execute(b"ROLLBACK")
                    raise
                sent[0] = True
                conn.execute(b"COMMIT")
            return result

        return self._run(body)

    def _statement(self, fn: Callable[[PgTx], T]) -> T:
        """``fn`` issuing exactly one statement, in autocommit (consistent by itself)."""

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> T:
            return fn(PgTx(conn))

        return self._run(body)

    def _after_write(self) -> None:
        self._writes += 1
        if self._writes % _HOUSEKEEPING_EVERY == 0:
            self._purge_in_request()

    def _purge_in_request(self) -> None:
        # The write is committed: a failed purge must not turn its answer into an error.
        with contextlib.suppress(Unavailable, StorageFull):  # the next round will purge
            self.purge_expired(max_batches=1)  # inside a request: one batch only

    # -- the Store protocol ------------------------------------------------------------------

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        now = self.clock()
        return self._statement(lambda tx: self.engine.read(tx, namespace, key, tail, now))

    def get_json(self, namespace: str, key: str, *, tail: int | None = None) -> JSONEntry | None:
        """Like :meth:`get`, with the value as its stored JSON text (``Engine.read_json``)."""
        now = self.clock()
        return self._statement(lambda tx: self.engine.read_json(tx, namespace, key, tail, now))

    def async_reader(self) -> AsyncPgReader:
        """A reader of single keys for an asyncio event loop, on a pool of its own (at most
        ``read_max_size`` connections; this store's timeout and connect options); open it
        inside the loop.

        Reads then need no worker thread; writes stay on this store. See :mod:`._pg_async`.
        """
        from ._pg_async import AsyncPgReader

        return AsyncPgReader(
            self.dsn,
            self._connect_kwargs,
            engine=self.engine,
            where=self._where,
            min_size=self._read_sizes[0],
            max_size=self._read_sizes[1],
            timeout=self._timeout,
            retries=self._retries,
            write_max_size=self._max_size if self.async_writes else 0,
            housekeeping=self._purge_in_request,
        )

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        now = self.clock()
        if all(op.kind == "get" for op in ops):  # reads keep no idempotency record
            return self._read_batch(namespace, ops, now)
        fp = fingerprint(ops, atomic) if idempotency_key is not None else None
        prefetch = self.engine.write_prefetch(namespace, ops, idempotency_key)
        prepared = self._prepared

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> list[dict[str, Any]]:
            # The event loop's write path (``_pg_write``: the statements of a round trip in
            # one simple query, the hot ones prepared), run in this thread: it never suspends.
            plan = self.engine.plan_apply(
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=idempotency_key,
                fingerprint=fp,
                now=now,
            )
            names = blocking(prepared.ready(conn))
            return blocking(write_async(conn, plan, sent, prefetch, prepared, names, notify, gate))

        gate = self._wakes.gate
        # the written keys' hints ride with the namespace, as a server's hub sends them
        payload = notice(namespace, {op.key for op in ops})
        notify = (NOTIFY_SQL, (CHANNEL, payload)) if self.notify and gate.open() else None

        results = self._run(body)
        self._wakes.wake(namespace)
        self._after_write()
        return results

    def _read_batch(self, namespace: str, ops: Sequence[Op], now: float) -> list[dict[str, Any]]:
        """All gets of a batch in one snapshot and one round trip: whole values in one statement
        (``Engine.read_many_query``); with a ``tail`` (or past ``MOST_PER_STATEMENT`` gets), the
        engine's query for each (``Engine.read_query``) in one pipelined ``REPEATABLE READ``
        transaction. The engine decodes the rows."""
        rows = self._read_batch_rows(namespace, ops, now)
        return [
            self.engine.result_from_rows(namespace, op, r) for op, r in zip(ops, rows, strict=True)
        ]

    def read_batch_json(self, namespace: str, ops: Sequence[Op]) -> list[str]:
        """Like :meth:`_read_batch`, each result as JSON text with the value spliced in."""
        rows = self._read_batch_rows(namespace, ops, self.clock())
        return [
            self.engine.result_json_from_rows(namespace, op, r)
            for op, r in zip(ops, rows, strict=True)
        ]

    def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]]:
        """(key, bytes, updated_at) of the most recently updated keys (``Engine.recent_keys``)."""
        now = self.clock()
        return self._statement(lambda tx: self.engine.recent_keys(tx, namespace, limit, now))

    def list_namespaces(
        self, prefix: str = "", after: str | None = None, limit: int = 500
    ) -> list[tuple[str, int, int]]:
        """``(namespace, keys, bytes)`` of namespaces with keys (``Engine.list_namespaces``)."""
        return self._statement(lambda tx: self.engine.list_namespaces(tx, prefix, after, limit))

    def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int:
        """JSON bytes reading ``keys`` would return (``Engine.stored_bytes``)."""
        now = self.clock()
        return self._statement(lambda tx: self.engine.stored_bytes(tx, namespace, keys, now))

    def _read_batch_rows(
        self, namespace: str, ops: Sequence[Op], now: float
    ) -> list[list[tuple[Any, ...]]]:
        if not ops:
            return []
        if len(ops) <= MOST_PER_STATEMENT and all(op.tail is None for op in ops):
            # Whole values: one statement (``Engine.read_many_query``), so one snapshot, as a
            # server reads them (``AsyncPgReader.read_batch_json``); no transaction to open.
            sql, params = self.engine.read_many_query([(namespace, op.key) for op in ops], now)
            rows: list[tuple[Any, ...]] = self._statement(lambda tx: tx.all(sql, params))
            return by_position(rows, len(ops))
        queries: list[tuple[str, list[Any]]] = []
        for op in ops:
            sql, params = self.engine.read_query(namespace, op.key, op.tail, now)
            queries.append((pg_sql(sql), params))

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> list[list[tuple[Any, ...]]]:
            cursors = []
            with conn.pipeline():
                conn.execute(BEGIN_READ)
                for sql, params in queries:
                    cur = conn.cursor()
                    cur.execute(sql, params)
                    cursors.append(cur)
                conn.execute(b"COMMIT")
            return [cur.fetchall() for cur in cursors]

        return self._run(body)

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        if cursor:
            check_key(cursor, namespace)
        now = self.clock()
        return self._statement(
            lambda tx: self.engine.list_keys(tx, namespace, prefix, cursor, limit, now)
        )

    def clear(self, namespace: str, *, idempotency_key: str | None = None) -> int:
        now, ikey = self.clock(), idempotency_key
        cleared = self._write(lambda tx: self.engine.clear(tx, namespace, now, ikey))
        self._changed(namespace, notify=self.notify)
        return cleared

    def usage(self, namespace: str) -> Usage:
        now = self.clock()
        return self._write(lambda tx: self.engine.usage(tx, namespace, now))

    def get_policy(self, namespace: str) -> Policy:
        """The namespace's retention policy in force (``SupportsPolicy``)."""
        check_namespace(namespace)
        return self._statement(lambda tx: self.engine.get_policy(tx, namespace))

    def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        """Change the namespace's retention policy (``SupportsPolicy``): enforced from the next
        write (any replica: it is read with the namespace lock), and by housekeeping."""
        check_namespace(namespace)
        now = self.clock()
        return self._write(lambda tx: self.engine.set_policy(tx, namespace, now, changes))

    def _enforce_policies(self, max_batches: int | None) -> int:
        """Clear namespaces idle past their ``max_idle``, trim lists over a lowered
        ``max_list_len``: one short transaction each, :data:`PURGE_BATCH` per batch."""
        cleared = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            now = self.clock()
            idle = self._statement(
                functools.partial(self.engine.idle_namespaces, now=now, limit=PURGE_BATCH)
            )
            # Watchers see these changes (tombstones, a new version), and a server's watch hub
            # never hears of housekeeping: notified even with notify=False.
            for ns in idle:
                gone = self._write(functools.partial(self.engine.clear_idle, ns=ns, now=now))
                if gone:
                    cleared += gone
                    self._changed(ns, notify=True)
            lists = self._statement(functools.partial(self.engine.long_lists, limit=PURGE_BATCH))
            for ns, key in lists:
                if self._write(functools.partial(self.engine.trim_list, ns=ns, key=key, now=now)):
                    self._changed(ns, notify=True)
            if len(idle) < PURGE_BATCH and len(lists) < PURGE_BATCH:
                break
        return cleared

    def purge_expired(self, *, max_batches: int | None = None) -> int:
        """Delete expired entries store-wide and forget idempotency records older than a day.

        Works in batches of :data:`PURGE_BATCH` namespaces, one short transaction per
        namespace, until none has an expired entry left (or after ``max_batches``), so a
        purge of thousands of namespaces never holds a lock, or a pooled connection, for long.
        """

        def purge(tx: PgTx, ns: str) -> int:
            stats, at = self.engine.lock_namespace_at(tx, ns, now)
            gone = self.engine.purge_namespace(tx, ns, at, stats)
            self.engine.save_namespace(tx, ns, stats)
            return gone

        purged = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            now = self.clock()
            namespaces = self._statement(
                functools.partial(self.engine.expired_namespaces, now=now, limit=PURGE_BATCH)
            )
            gone = 0
            for ns in namespaces:
                gone += self._write(functools.partial(purge, ns=ns))
            purged += gone
            if len(namespaces) < PURGE_BATCH or not gone:
                break
        now = self.clock()
        while self._write(lambda tx: self.engine.forget_idempotency(tx, now)) == PURGE_BATCH:
            pass  # a bounded number of namespaces per transaction
        purged += self._enforce_policies(max_batches)
        if max_batches is None:  # housekeeping (not the purge inside a request)
            self.prune_tombstones()
        return purged

    def ping(self) -> None:
        """Raise :class:`~botwire.Unavailable` unless the database answers (for ``/readyz``)."""
        self._statement(lambda tx: tx.one("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._closed, self._reopen = True, False
        self._pool.close()
        self._wakes.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"
