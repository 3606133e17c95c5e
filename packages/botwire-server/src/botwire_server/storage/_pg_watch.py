"""PostgreSQL's side of the change feed (issue 18, watch): ``changes`` and the tombstones'
pruning, a mixin of :class:`~botwire_server.storage.postgres.PostgresStore` (kept apart for
its size).

The server wakes its waiters by LISTEN/NOTIFY (``botwire_server.watch``). A ``changes(wait=)``
called on the store itself, used without a server, waits the same way: its first wait starts
one listener per store (``_pg_listen``: a connection of its own, in a thread) and each waiting
call sleeps until a notification names its namespace, re-reading at least every
:data:`WATCH_BACKSTOP` s (a writer that died between its commit and its notify, or that sends
none, is seen then). The store's own writes wake its waiters at once. Until the listener has
proved that notifications reach it (its probe), and for good when they do not (a
transaction-mode pooler on the URL: give ``listen_url``), a waiting call re-reads every
:data:`WATCH_POLL` s instead."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from botwire._config import is_postgres
from botwire._errors import InvalidArgument, Unavailable
from botwire.store import Changes
from botwire.store._sqlwatch import PRUNE_BATCH, check_changes_args, high_water_sql
from botwire.store._wakeups import Waiters, Wake, Wakeup, wait_for_change

from ..watch import CHANNEL, NOTIFY_SQL
from ._pg_listen import Listener, NotifyGate, parse
from ._pg_tx import PgTx

if TYPE_CHECKING:
    from botwire.store._sql import Engine

__all__ = ["BEGIN_READ", "WATCH_BACKSTOP", "WATCH_POLL", "PgWatch", "Wakes", "check_listen_url"]

log = logging.getLogger("botwire_server.store")

#: How often a waiting ``changes`` called on the store itself re-reads while no LISTEN serves it.
WATCH_POLL = 0.05
#: The longest a waiting ``changes`` sleeps on the listener before it re-reads anyway.
WATCH_BACKSTOP = 1.0
BEGIN_READ = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
#: Many namespaces' high-water versions: the engine's per-namespace lookup, once per name.
HIGH_WATERS_SQL = (
    f"SELECT n.ns, ({high_water_sql('n.ns')}) FROM unnest(CAST(%s AS text[])) AS n(ns)"
)


def check_listen_url(url: str | None) -> None:
    """``PostgresStore(listen_url=)``: a PostgreSQL URL or connection string, else a clear
    error (a server's address or a file would only fail later, in the listener's thread)."""
    if url is not None and not is_postgres(url):
        raise InvalidArgument(
            "botwire: PostgresStore(listen_url=...) must be a postgresql:// URL (or a "
            "key=value connection string) of the same database, reached directly."
        )


class Wakes:
    """A store's waiting ``changes`` calls, per namespace, and the listener that wakes them.

    ``state``: ``"off"`` (no one waited yet), ``"starting"`` (the listener connects and
    probes), ``"listening"``, ``"polling"`` (LISTEN does not work here, for good) or
    ``"closed"`` (the store was closed: no listener starts again). ``gate``: whether the
    store's writes send their notifications (none for a while after PostgreSQL refused one for
    want of privilege)."""

    def __init__(self, listen_dsn: str, notify_dsn: str, connect_kwargs: dict[str, Any]) -> None:
        self._args = (listen_dsn, notify_dsn, connect_kwargs)
        self._lock = threading.Lock()
        self._waiters = Waiters(self._lock, self.interval)
        self.listener: Listener | None = None
        self.state = "off"
        self.gate = NotifyGate("this store")

    def fresh(self) -> Wakes:
        """A new one with the same URLs (a forked child's: the parent's listener stays its)."""
        return Wakes(*self._args)

    def add(self, namespace: str, wake: Wake) -> Wakeup:
        """Call ``wake`` whenever ``namespace`` may have changed, until the handle's cancel; the
        listener starts on the first call."""
        handle = self._waiters.add(namespace, wake)
        with self._lock:
            if self.state == "off":
                self.state = "starting"
                listen_dsn, notify_dsn, kwargs = self._args
                self.listener = Listener(
                    listen_dsn,
                    notify_dsn,
                    kwargs,
                    on_payload=self._payload,
                    on_connected=self._connected,
                    on_unusable=self._unusable,
                    name="botwire-store-listen",
                )
                self.listener.start()
        return handle

    def interval(self) -> float:
        """How long a waiting call sleeps, at most, before it re-reads."""
        return WATCH_BACKSTOP if self.state == "listening" else WATCH_POLL

    def wake(self, namespace: str) -> None:
        if not self._waiters:  # nobody waits: the common case of a write
            return
        self._waiters.wake([namespace])

    def wake_all(self) -> None:
        self._waiters.wake()

    def _payload(self, payload: str) -> None:
        for namespace, _ in parse(payload):  # waits here are per namespace: hints unused
            self.wake(namespace)

    def _connected(self) -> None:
        # (Re)connected: what was sent while it had no connection is lost; everyone re-reads.
        with self._lock:
            if self.state != "closed":
                self.state = "listening"
        self.wake_all()

    def _unusable(self, why: str) -> None:
        with self._lock:
            if self.state == "closed":
                return
            self.state = "polling"
        log.warning(
            "botwire: PostgresStore watch: %s: waiting watches re-read every %s s. For instant "
            "wake-ups without polling give PostgresStore(..., listen_url='postgresql://...'): "
            "the same database reached directly, bypassing the pooler.",
            why,
            WATCH_POLL,
        )

    def close(self) -> None:
        """Stop the listener and wake every waiter (it re-reads, and fails on a closed store)."""
        with self._lock:
            self.state = "closed"
        if self.listener is not None:
            self.listener.stop()
        self.wake_all()


class PgWatch:
    """``changes``, ``prune_tombstones`` and ``_changed`` (the wake-ups of a commit outside
    ``batch``) over the store's ``engine``, ``clock``, ``_run``, ``_write`` and ``_statement``."""

    engine: Engine
    clock: Callable[[], float]
    _run: Callable[..., Any]
    _write: Callable[..., Any]
    _statement: Callable[..., Any]
    _wakes: Wakes

    def _changed(self, namespace: str, *, notify: bool) -> None:
        """A commit outside ``batch`` (which sends its notify with the write's ``COMMIT``)
        changed ``namespace``: wake this store's waiters and, with ``notify``, every other
        process's; the change has committed, so a failed notify is only logged."""
        self._wakes.wake(namespace)
        gate = self._wakes.gate
        if not notify or not gate.open():
            return
        try:
            self._statement(lambda tx: tx.one(NOTIFY_SQL, (CHANNEL, namespace)))
        except (psycopg.Error, Unavailable) as exc:
            if gate.settle(exc):
                log.warning("botwire: %s changed, but its NOTIFY failed (%s)", namespace, exc)
        else:
            gate.settle(None)

    def changes(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: int | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> Changes:
        """What changed under ``prefix`` after version ``after`` (``SupportsChanges``), read in
        one ``REPEATABLE READ`` snapshot; with ``after`` and ``wait`` > 0, waits up to ``wait``
        s for a change, woken by LISTEN/NOTIFY (module docstring)."""
        check_changes_args(namespace, prefix, after, limit)
        deadline = time.monotonic() + max(0.0, float(wait))

        def read(since: int | None) -> Changes:
            def body(conn: psycopg.Connection[Any], sent: list[bool]) -> Changes:
                conn.execute(BEGIN_READ)
                try:
                    found = self.engine.changes(
                        PgTx(conn), namespace, prefix, since, limit, self._now_for_read(conn)
                    )
                finally:
                    conn.execute(b"COMMIT")
                return found

            found: Changes = self._run(body)
            return found

        if after is None or wait <= 0:
            return read(after)
        # a write that commits after a read wakes the wait (its notify follows its commit)
        return wait_for_change(read, functools.partial(self.wakeup, namespace), deadline, after)

    def wakeup(self, namespace: str, wake: Wake) -> Wakeup:
        """``SupportsWakeups``: ``wake()`` whenever ``namespace`` may have changed (a
        notification, this store's own write, a reconnect); the listener starts on the first."""
        return self._wakes.add(namespace, wake)

    def high_waters(self, namespaces: list[str]) -> dict[str, int]:
        """Each namespace's highest version (``Engine.high_water``) in one statement: what the
        server's watch polls behind a transaction pooler, where LISTEN is lost. (A statement
        per namespace cost PostgreSQL half a core for 1,000 idle polls, 10 looks a second.)"""

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> dict[str, int]:
            rows = conn.execute(HIGH_WATERS_SQL, (list(namespaces),)).fetchall()
            return {str(ns): int(v) if v is not None else 0 for ns, v in rows}

        found: dict[str, int] = self._run(body)
        return found

    def changed_keys(self, afters: dict[str, int], limit: int) -> dict[str, list[str] | None]:
        """Per namespace, the keys written or deleted after its version in ``afters``
        (``Engine.changed_keys``: ``None`` when more than ``limit``), in one snapshot: what a
        polling replica wakes its waiters by."""

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> dict[str, list[str] | None]:
            conn.execute(BEGIN_READ)
            try:
                tx = PgTx(conn)
                return {ns: self.engine.changed_keys(tx, ns, a, limit) for ns, a in afters.items()}
            finally:
                conn.execute(b"COMMIT")

        found: dict[str, list[str] | None] = self._run(body)
        return found

    def _now_for_read(self, conn: psycopg.Connection[Any]) -> float:
        """ "now" for a read transaction's expiry checks: the database's (plus the offset)."""
        if not self.engine.db_clock:
            return self.clock()
        row = conn.execute(
            "SELECT extract(epoch from statement_timestamp())::float8 + %s", (self.clock(),)
        ).fetchone()
        assert row is not None
        return float(row[0])

    def prune_tombstones(self) -> int:
        """Forget tombstones older than the retention (``Engine.tombstone_seconds``),
        :data:`~botwire.store._sqlwatch.PRUNE_BATCH` per transaction; return how many."""
        pruned = 0
        while True:
            done: int = self._write(
                functools.partial(self.engine.prune_tombstones, now=self.clock())
            )
            pruned += done
            if done < PRUNE_BATCH:
                return pruned
