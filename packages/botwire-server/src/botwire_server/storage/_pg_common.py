"""What the PostgreSQL store (``postgres.py``) and its event-loop reader (``_pg_async.py``) share:
the engine's SQL in psycopg's placeholders, which failures are retried, and the errors (with
the server named, never the password) that both raise for the same failure."""

from __future__ import annotations

import contextlib
import functools
import random
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolClosed, PoolTimeout

from botwire._errors import StorageFull, Unavailable

__all__ = [
    "LOST",
    "LOST_RETRIES",
    "RETRYABLE",
    "STALE",
    "Retry",
    "disk_full",
    "generic_plans",
    "kept_aborting",
    "no_connection",
    "pg_sql",
    "reason",
    "request_failed",
    "where",
]

#: Failures after which the whole transaction is run again (serialization races, deadlocks,
#: a hot standby cancelling a conflicting query).
RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
# Lost connections, and server-side failures that end the transaction (cancel, lock timeout,
# too many connections...); PoolTimeout and PoolClosed are OperationalErrors too.
LOST = (psycopg.OperationalError, psycopg.InterfaceError)
LOST_RETRIES = 2  # fresh connections tried after a lost one, before answering "unavailable"
#: psycopg used a statement it had prepared on the connection and the session no longer has it
#: (reset behind psycopg's back by a pooler or an operator; see ``PgTx.many`` for how psycopg
#: itself did it once). The statement failed, so its transaction did too:
#: nothing was applied, even after a ``COMMIT`` went, and the call runs again on a fresh
#: connection (the caller closes this one), once.
STALE = pg_errors.InvalidSqlStatementName


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """The engine's ``?`` placeholders as psycopg's ``%s`` (the engine's SQL has no literals
    holding ``?``); cached so every call site sends the identical text psycopg auto-prepares."""
    return sql.replace("%", "%%").replace("?", "%s")


async def generic_plans(conn: psycopg.AsyncConnection[Any]) -> None:
    """A read connection's statements run on generic plans (``plan_cache_mode``), the plan
    psycopg's prepared statement keeps, never planned again per execution.

    Every read statement looks its rows up by index whatever its parameters (a batch's keys
    each by primary key: ``LATERAL ... OFFSET 0``), so a plan made for the values at hand gains
    nothing, and making one costs more than the read: a batch of 1-5 keys took 200-560 µs a
    statement with one planned per execution, 120-150 µs on the generic plan. PostgreSQL's own
    choice (``auto``) kept planning for them: sized for the array at hand, a small batch's plan
    is estimated cheaper than the generic one. PostgreSQL before 12 has no such setting and
    keeps its own choice."""
    with contextlib.suppress(pg_errors.UndefinedObject):
        await conn.execute("SET plan_cache_mode = force_generic_plan")


def where(dsn: str) -> str:
    """The server a DSN points at, without its password (for messages)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured PostgreSQL server"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port") or "5432"
    return f"PostgreSQL at {host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def reason(exc: BaseException) -> str:
    """The driver's message on one line, without a final period or server-side context."""
    text = str(exc)
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = exc.diag.message_primary
    return " ".join(text.split()).rstrip(".") or type(exc).__name__


def no_connection(where: str, exc: BaseException) -> Unavailable:
    """The error for a pool that gave no connection in time (or was closed)."""
    return Unavailable(
        f"botwire: no connection to {where}: {reason(exc)}. Check that the "
        "database is up, or raise the pool's max_size/timeout.",
    )


def request_failed(where: str, exc: BaseException, *, sent: bool = False) -> Unavailable:
    """The error for a request whose connection was lost (``sent``: after its COMMIT went)."""
    return Unavailable(
        f"botwire: the request to {where} failed: {reason(exc)}."
        + (
            " The write may or may not have been applied; retry it with the same idempotency key."
            if sent
            else " Try again later."
        ),
    )


def kept_aborting(where: str, exc: BaseException, retries: int) -> Unavailable:
    """The error for a transaction that lost every serialization race it was retried in."""
    return Unavailable(
        f"botwire: {where} kept aborting the transaction "
        f"({reason(exc)}) after {retries} retries; try again later.",
    )


def disk_full(where: str, exc: BaseException) -> StorageFull:
    """The error for a write refused because the database's disk is full (no lost connection:
    nothing is retried)."""
    return StorageFull(
        f"botwire: {where} has no disk space left ({reason(exc)}): writes "
        "are refused until space is freed. Delete keys or clear namespaces you no "
        "longer need, or grow the database's volume; writes resume by themselves.",
    )


class Retry:
    """The retry policy of one call to PostgreSQL, the same for every path (the sync store's
    transactions, the event loop's reads and writes).

    A serialization race or deadlock runs the whole call again after a short random backoff,
    ``retries`` times at most; a statement the session lost (:data:`STALE`) once, at once, on a
    fresh connection; a lost connection is retried on a fresh one (twice at most) unless
    the ``COMMIT`` was already sent (then the outcome is unknown: never retried); a pool that gives
    no connection in time, or a full disk, is answered at once. Use::

        retry = Retry(where, retries)
        while True:
            try:
                return call()
            except Exception as exc:
                step = retry.next(exc, sent=sent_commit)
                if step is None:
                    raise  # not a database failure: the caller's own error
                delay, check_pool = step  # sleep ``delay``; test the idle connections first
    """

    def __init__(self, where: str, retries: int) -> None:
        self.where, self.retries = where, retries
        self.attempt = self.lost = self.stale = 0

    def next(self, exc: Exception, *, sent: bool = False) -> tuple[float, bool] | None:
        """After ``exc``: ``(seconds to wait, whether to test the pool's idle connections)``
        before the next attempt. Raises the error to answer when no attempt is due; ``None`` for
        an exception that is not a database failure."""
        if isinstance(exc, RETRYABLE):
            self.attempt += 1
            if self.attempt > self.retries:
                raise kept_aborting(self.where, exc, self.retries) from exc
            return random.uniform(0, 0.001 * 2**self.attempt), False
        if isinstance(exc, STALE) and not self.stale:
            self.stale += 1
            return 0.0, False
        if isinstance(exc, PoolTimeout | PoolClosed):  # OperationalErrors: before LOST
            raise no_connection(self.where, exc) from exc
        if isinstance(exc, pg_errors.DiskFull):  # an OperationalError, but no lost connection
            raise disk_full(self.where, exc) from exc
        if isinstance(exc, LOST):
            self.lost += 1
            if sent or self.lost > LOST_RETRIES:
                raise request_failed(self.where, exc, sent=sent) from exc
            # The server may have restarted or failed over: every idle connection is suspect,
            # so test them all (dropping the dead) before trying again.
            return 0.0, True
        return None
