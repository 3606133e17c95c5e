"""Waking long-polls (``GET /v1/namespaces/{ns}/changes?wait=``) when their namespace changes.

A waiter holds an :class:`asyncio.Event` registered under its namespace; it re-reads the
store's ``changes`` whenever the event is set. Three sources set it:

- **writes made by this process**: the store runner calls :meth:`WatchHub.written` after a
  write commits (every backend), with the keys the write's ops named; it wakes the waiters
  whose prefix one of them is under (a ``clear``, a policy change, housekeeping: all of the
  namespace's). A held poll with a prefix nobody writes is never woken by this server's writes;
  before, 100 of them made each write cost 100 reads;
- **other processes on the same SQLite file**: while anyone waits, one task polls the store's
  ``foreign_version`` (``PRAGMA data_version`` on the writer connection: other connections'
  commits move it, this store's own do not) every :data:`POLL_SECONDS`; when it moved, it
  reads the high-water version of each watched namespace (two index look-ups each) and wakes
  all the waiters of those that moved;
- **other replicas on PostgreSQL**: ``LISTEN botwire_changes`` on a dedicated connection, a
  task of the event loop (``storage._pg_listen``, shared with a store used without a server,
  which runs it in a thread; a thread here cost 5-8% of P3's writes); each replica,
  after its writes commit, sends the namespaces it wrote with ``SELECT
  pg_notify('botwire_changes', p)`` (one per payload, all in one simple query) on another
  dedicated connection, an ``AsyncConnection`` in the event loop (no thread hop per write, no
  cursor). Sends are coalesced: one query at a time and at most one per :data:`NOTIFY_INTERVAL`;
  each payload carries many namespaces, space-separated (namespaces have no spaces), up to
  PostgreSQL's 8000 bytes, each with hints of the keys written to it (at most ``MAX_HINTS``;
  ``storage._pg_listen.notice``), so the other replicas too wake only the waiters a written key
  may be under. A quiet replica notifies at once; a busy one sends one query for all the writes
  of an interval (measured: a NOTIFY per write cost a quarter of PostgreSQL SET throughput and a
  third of APPEND's). NOTIFY is never sent inside the write's own transaction: PostgreSQL
  serializes the commits of notifying transactions. Every notification of a replica starts
  with its origin token (``/<hex>``), by which its listener skips its own (their writes woke
  its waiters already): a backend's pid, used before, tells nothing behind a transaction-mode
  pooler, where the replica's notifications leave through any pooled session.
  Behind a transaction-mode pooler (PgBouncer) a LISTEN is lost: its session goes back to the
  pool. The listener then uses ``--pg-listen-url`` (a direct connection); without it, or when
  the listener's start-up probe (a ``pg_notify`` it sends itself through the database URL)
  never arrives, the replica **polls** each watched namespace's high-water version every
  :data:`PG_POLL_SECONDS` while anyone waits, and says so in a start-up warning. A role
  without ``EXECUTE`` on ``pg_notify`` has its notifications refused: the replica then polls
  (its probe is refused), says once that its own are refused, with the fix, and sends none for
  a minute at a time (``storage._pg_listen.NotifyGate``), on the same connection.

Waiters are bounded (``max_watchers`` per server, ``max_watchers_per_namespace``): beyond, the
request is refused with 429 and ``Retry-After: 1``, before it holds anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Collection, Iterator
from typing import Any

from botwire import QuotaExceeded

from .storage._pg_listen import (
    CHANNEL,
    MAX_HINTS,
    Listener,
    NotifyGate,
    covers,
    hints,
    notice,
    origin,
    parse,
    refusal,
)
from .storage._pg_listen import PROBE_SECONDS as LISTEN_PROBE_SECONDS

__all__ = [
    "CHANNEL",
    "LISTEN_PROBE_SECONDS",
    "NOTIFY_INTERVAL",
    "PG_POLL_SECONDS",
    "POLL_SECONDS",
    "WatchHub",
]

log = logging.getLogger("botwire_server.watch")

#: The shortest time between two notify statements of one replica (seconds).
NOTIFY_INTERVAL = 0.005
#: One notification (all of a send's ride in one simple query: one implicit transaction).
NOTIFY_SQL = "SELECT pg_notify(?, ?)"
#: The most bytes of namespaces in one notification (PostgreSQL refuses payloads of 8000; the
#: replica's origin token adds 18).
PAYLOAD_BYTES = 7900
#: How often the SQLite poller looks at ``data_version`` while someone waits.
POLL_SECONDS = 0.02
#: At most this many changed keys are read per moved namespace to wake its waiters by key
#: (another process's commit to the SQLite file); beyond, all of them wake.
CHANGED_KEYS = 1000
#: How often a PostgreSQL replica without a working LISTEN polls while anyone waits.
PG_POLL_SECONDS = 0.1


class WatchHub:
    """The server's waiting long-polls, per namespace, and what wakes them (module doc)."""

    def __init__(
        self,
        store: Any,
        *,
        max_watchers: int,
        per_namespace: int,
        listen_dsn: str | None = None,
    ) -> None:
        self.store = store
        self.max_watchers = max_watchers
        self.per_namespace = per_namespace
        #: namespace -> each waiter's event and the prefix it reads under
        self._waiters: dict[str, dict[asyncio.Event, str]] = {}
        self.count = 0
        #: waiters woken to read again (a metric: a wake is one read of the store)
        self.wakes = 0
        self._poller: asyncio.Task[None] | None = None
        self._high: dict[str, int] = {}
        # PostgreSQL
        self._dsn: str | None = None
        self._connect_kwargs: dict[str, Any] = {}
        self._stop = threading.Event()
        self._listener: Listener | None = None
        #: namespaces written since the last notify -> the hints of their keys (None: any)
        self._pending: dict[str, set[str] | None] = {}
        self._pending_lock = threading.Lock()
        self._sender: asyncio.Task[None] | None = None
        self._sent_at = 0.0  # the event loop's time of the last notify statement
        self._send_conn: Any = None  # a psycopg.AsyncConnection, in the event loop
        #: Each of this replica's notifications starts with its origin token; the listener
        #: skips what starts with it (its writes woke its waiters already).
        self._origin = origin()
        #: A direct URL for LISTEN (``--pg-listen-url``); the store's URL when None.
        self._listen_dsn = listen_dsn
        #: True when this replica polls for other replicas' writes (LISTEN does not work).
        self.pg_polling = False
        self._gate = NotifyGate("this replica")

    async def open(self) -> None:
        """Start listening (PostgreSQL); call inside the server's event loop."""
        dsn = getattr(self.store, "dsn", None)  # PostgresStore's (a URL or key=value form)
        if isinstance(dsn, str) and hasattr(self.store, "async_reader"):
            self._dsn = dsn
            self._connect_kwargs = dict(getattr(self.store, "_connect_kwargs", {}))
            self._connect_kwargs["autocommit"] = True
            if self._listen_dsn is None and getattr(self.store, "transaction_pooler", False):
                self._use_polling(
                    "the database URL goes through a transaction-mode pooler, where a LISTEN is "
                    "lost, and no --pg-listen-url was given"
                )
                return
            # on this event loop, not in a thread (``Listener`` says why); its callbacks too
            self._listener = Listener(
                self._listen_dsn or dsn,
                dsn,
                self._connect_kwargs,
                on_payload=lambda payload: self._woken(payload),
                on_connected=lambda: self.wake_all(),
                on_unusable=lambda why: self._use_polling(why),
            )
            self._listener.start_in_loop()

    def _use_polling(self, why: str) -> None:
        """Fall back to polling for other replicas' writes (in the event loop's thread)."""
        self.pg_polling = True
        log.warning(
            "watch: %s: waiting watches see other replicas' writes by polling every %s s "
            "(this replica's own writes still wake them at once). For instant wake-ups give "
            "--pg-listen-url postgresql://... (the same database reached directly, bypassing "
            "PgBouncer; env BOTWIRE_PG_LISTEN_URL).",
            why,
            PG_POLL_SECONDS,
        )
        if self.count > 0:
            self._start_poller()

    async def close(self) -> None:
        self._stop.set()
        for task in (self._poller, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._listener is not None:
            await self._listener.aclose()
        if self._send_conn is not None:
            with contextlib.suppress(Exception):
                await self._send_conn.close()
        self.wake_all()

    # -- waiters -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def waiting(self, ns: str, prefix: str = "") -> Iterator[asyncio.Event]:
        """Register a waiter on ``ns`` for the block (freed however the block ends: answer,
        error, client gone); 429 when the server or the namespace holds its limit. A write made
        here wakes it only when it names a key under ``prefix`` (:meth:`written`)."""
        waiters = self._waiters.get(ns)
        if self.count >= self.max_watchers:
            raise QuotaExceeded(
                f"botwire: this server holds its limit of {self.max_watchers} waiting watches "
                "(--max-watchers); retry in a second, or watch with fewer requests (one "
                "watch_prefix instead of many watch calls).",
                namespace=ns,
                retry_after=1,
                quota="max_watchers",
                limit=self.max_watchers,
            )
        if waiters is not None and len(waiters) >= self.per_namespace:
            raise QuotaExceeded(
                f"botwire: namespace {ns!r} has its limit of {self.per_namespace} waiting "
                "watches on this server (--max-watchers-per-namespace); retry in a second, or "
                "share one watch_prefix between callers.",
                namespace=ns,
                retry_after=1,
                quota="max_watchers_per_namespace",
                limit=self.per_namespace,
            )
        event = asyncio.Event()
        if waiters is None:
            waiters = self._waiters[ns] = {}
        waiters[event] = prefix
        self.count += 1
        self._start_poller()
        if ns not in self._high and callable(getattr(self.store, "foreign_version", None)):
            # SQLite: the poller's base for this namespace, read before the waiter's first
            # read, so its first look finds the keys changed since (not a wake of everyone)
            with contextlib.suppress(Exception):  # none: the first look wakes them all
                self._high[ns] = self.store.high_waters([ns]).get(ns, 0)
        try:
            yield event
        finally:
            self.count -= 1
            waiters.pop(event, None)
            if not waiters and self._waiters.get(ns) is waiters:
                del self._waiters[ns]
                self._high.pop(ns, None)

    def wake(self, ns: str, keys: Collection[str] | None = None) -> None:
        """Wake the waiters of ``ns``: those whose prefix one of ``keys`` (keys, or another
        replica's hints of them) may be under (``covers``), or all of them when the keys are not
        known (``None``: a ``clear``, another process's write without hints)."""
        waiters = self._waiters.get(ns)
        if not waiters:
            return
        test = None if keys is None else covers(keys)
        for event, prefix in waiters.items():
            if not event.is_set() and (test is None or not prefix or test(prefix)):
                self.wakes += 1
                event.set()

    def wake_all(self) -> None:
        for ns in list(self._waiters):
            self.wake(ns)

    def written(self, ns: str, keys: Collection[str] | None = None) -> None:
        """A write to ``ns`` committed in this process: wake its waiters here (only those
        under a prefix of one of ``keys``, the keys the write named, when given), and tell the
        other replicas (PostgreSQL), with the keys' hints, so theirs wake the same way."""
        self.wake(ns, keys)
        if self._dsn is None or self._stop.is_set() or not self._gate.open():
            return
        with self._pending_lock:
            known = self._pending.get(ns, set())
            if keys is None or known is None:
                self._pending[ns] = None
            else:
                known |= hints(keys)
                self._pending[ns] = known if len(known) <= MAX_HINTS else None
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    # -- SQLite: other processes on the same file ----------------------------------------------

    def _start_poller(self) -> None:
        if self._poller is not None and not self._poller.done():
            return
        if self.pg_polling:
            self._poller = asyncio.get_running_loop().create_task(self._poll_pg())
            return
        if not callable(getattr(self.store, "data_version", None)):
            return
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """While anyone waits: when another connection committed (``foreign_version``; a
        store without it: ``data_version``, any commit), wake the watched namespaces whose
        high-water version moved."""
        store = self.store
        # this process's own writes woke their waiters (``written``, key by key): where the
        # store can tell, only another connection's commits make the poller wake anyone
        read = getattr(store, "foreign_version", None) or store.data_version
        seen = read()
        while self.count > 0:
            await asyncio.sleep(POLL_SECONDS)
            try:
                version = read()
                if version == seen:
                    continue
                if version is not None:  # None: the writer is busy, so treat it as moved
                    seen = version
                names = list(self._waiters)
                highs = store.high_waters(names)
            except Exception as exc:  # the waiters' own reads report the store's failure
                log.warning("watch poller: %s", exc)
                self.wake_all()
                continue
            moved = self._moved(names, highs)
            if moved:
                self._wake_moved(moved, self._changed(moved))

    def _moved(self, names: list[str], highs: dict[str, int]) -> dict[str, int]:
        """The namespaces whose high-water version moved since the last poll (the pollers of a
        SQLite file and of PostgreSQL replicas behind a pooler), each with the version the
        poller had seen; one seen for the first time wakes its waiters (they read once)."""
        moved: dict[str, int] = {}
        for ns in names:
            if ns not in self._waiters:  # its last waiter left during the read: forget it
                continue
            high, seen = highs.get(ns, 0), self._high.get(ns)
            if high != seen:
                self._high[ns] = high
                if seen is None:
                    self.wake(ns)
                else:
                    moved[ns] = seen
        return moved

    def _changed(self, moved: dict[str, int]) -> dict[str, list[str] | None]:
        """The keys changed in each moved namespace since its seen version, where the store
        tells (``changed_keys``, at most :data:`CHANGED_KEYS`); a blocking call."""
        changed = getattr(self.store, "changed_keys", None)
        if changed is None:
            return {}
        try:
            found: dict[str, list[str] | None] = changed(moved, CHANGED_KEYS)
        except Exception as exc:  # the waiters' own reads report the store's failure
            log.warning("watch poller: %s", exc)
            return {}
        return found

    def _wake_moved(self, moved: dict[str, int], found: dict[str, list[str] | None]) -> None:
        """Wake, in each moved namespace, the waiters one of its changed keys may be under;
        all of them where the keys are unknown, too many, or moved by pruning alone (a 410)."""
        for ns in moved:
            keys = found.get(ns)
            self.wake(ns, keys or None)

    # -- PostgreSQL: other replicas ------------------------------------------------------------

    async def _poll_pg(self) -> None:
        """While anyone waits (LISTEN does not work): every :data:`PG_POLL_SECONDS`, read the
        high-water versions of the watched namespaces in one snapshot and wake those that moved
        (a namespace seen for the first time wakes once: its waiter re-reads, which is cheap,
        and no write between its read and this poll's is missed)."""
        while self.count > 0 and not self._stop.is_set():
            await asyncio.sleep(PG_POLL_SECONDS)
            names = list(self._waiters)
            if not names:
                continue
            try:
                highs = await asyncio.to_thread(self.store.high_waters, names)
            except Exception as exc:  # the waiters' own reads report the store's failure
                log.warning("watch poller: %s", exc)
                self.wake_all()
                continue
            moved = self._moved(names, highs)
            if moved:  # this replica's own writes move it too: by key, they wake no one else
                self._wake_moved(moved, await asyncio.to_thread(self._changed, moved))

    def _woken(self, payload: str) -> None:
        """Another replica's notification: wake the namespaces it names (with hints: only the
        waiters one of the written keys may be under). This replica's own are skipped."""
        if payload.startswith(self._origin):
            return
        for ns, keys in parse(payload):
            self.wake(ns, keys)

    async def _send(self) -> None:
        """Send the namespaces written since the last send, one statement at a time and at most
        one per :data:`NOTIFY_INTERVAL` (what is written meanwhile joins the next)."""
        loop = asyncio.get_running_loop()
        while True:
            if (wait := self._sent_at + NOTIFY_INTERVAL - loop.time()) > 0:
                await asyncio.sleep(wait)
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            names = [notice(ns, pending[ns]) for ns in sorted(pending)]
            self._sent_at = loop.time()
            if not self._gate.open():
                continue
            try:
                await self._notify(payloads(names))
            except Exception as exc:  # other replicas' waiters still wake at their hold's end
                if self._gate.settle(exc):
                    log.warning("watch notify failed: %s", exc)
            else:
                self._gate.settle(None)

    async def _notify(self, payloads: list[str]) -> None:
        from psycopg.pq import TransactionStatus

        from .storage._pg_write import AsyncPgTx, WriteConnection

        assert self._dsn is not None
        try:
            if self._send_conn is None or self._send_conn.closed:
                self._send_conn = await WriteConnection.connect(self._dsn, **self._connect_kwargs)
            # one simple query, on psycopg's libpq handle (AsyncPgTx), not through a cursor:
            # measured, 45 µs of the server's CPU per notify statement against 100 µs
            tx = AsyncPgTx(self._send_conn)
            for payload in payloads:
                tx.queue(NOTIFY_SQL, (CHANNEL, self._origin + payload))
            await tx.send()
        except Exception as exc:
            conn = self._send_conn
            if (
                conn is not None
                and refusal(exc)
                and conn.info.transaction_status == TransactionStatus.IDLE
            ):
                raise  # a privilege PostgreSQL refused: the connection itself is fine
            self._send_conn = None
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            raise


def payloads(names: list[str]) -> list[str]:
    """``names`` (namespaces, or a namespace's ``notice``: ASCII, without a space inside a
    notice but between its two tokens) joined by spaces into as few payloads as fit
    :data:`PAYLOAD_BYTES` each; a notice is never split."""
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for name in names:
        if chunk and size + 1 + len(name) > PAYLOAD_BYTES:
            out.append(" ".join(chunk))
            chunk, size = [], 0
        size += len(name) + (1 if chunk else 0)
        chunk.append(name)
    if chunk:
        out.append(" ".join(chunk))
    return out
