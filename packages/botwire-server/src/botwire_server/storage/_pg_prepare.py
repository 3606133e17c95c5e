"""Server-side prepared statements for the event loop's writes (``_pg_write``).

Those writes are simple queries with their parameters bound client-side (one driver call for
several statements), so PostgreSQL parsed and planned every statement of every write afresh:
measured under P10's workload (``benchmarks/pg_statements.py``), ~280 µs of planning per write,
as much as the execution. :class:`Prepared` turns the statements the writes send most into
named prepared statements on each write connection, and :class:`~._pg_write.AsyncPgTx` then
sends ``EXECUTE name(literals)`` instead of the statement: one small parse, and the plan cached
(PostgreSQL's own choice between custom and generic plans).

How, safely:

- A statement becomes *hot* after :data:`HOT_AFTER` uses in this process (at most :data:`MOST`
  of them), and gets a process-wide name (``bw_w0``, ``bw_w1``...).
- A connection prepares the hot statements it lacks when a write takes it from the pool, before
  ``BEGIN``, one ``PREPARE`` per statement in autocommit, so a failure leaves nothing half-done:
  a statement PostgreSQL refuses to prepare (a parameter type it cannot infer) is sent as a
  plain statement from then on; a lost connection fails the write as any lost connection does.
- A write that finds a statement missing (``InvalidSqlStatementName``: something reset the
  session) forgets what that connection holds and is retried (:meth:`forget`).
- Off behind a transaction-mode pooler (``prepare_threshold=None``): the next transaction may
  reach another PostgreSQL session, which lacks the statement (docs/server.md, PgBouncer).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import psycopg
import psycopg.errors

from ._pg_wait import run_statement

__all__ = ["HOT_AFTER", "MOST", "Prepared", "numbered"]

#: Uses in this process after which a statement is prepared on each write connection.
HOT_AFTER = 3
#: At most this many statements are prepared (a write uses ~10 kinds; lists and trims a few
#: more): texts that vary with their data (``IN`` lists) stay plain once the budget is spent.
MOST = 64


def numbered(sql: str) -> str:
    """The engine's ``?`` placeholders as PostgreSQL's ``$1``, ``$2``... (the engine's SQL has
    no literal holding ``?``, as ``pg_sql`` relies on too)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


class Prepared:
    """Which statements are prepared under which name, per write connection (module doc).

    Example (what ``AsyncPgReader`` does)::

        prepared = Prepared(enabled=True)
        names = await prepared.ready(conn)      # before BEGIN, on a connection from the pool
        tx = AsyncPgTx(conn, prepared=prepared, names=names)
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._uses: dict[str, int] = {}
        self._names: dict[str, str] = {}  # hot statement -> its name
        self._refused: set[str] = set()
        self._count = 0  # names are never reused, even for a statement refused meanwhile
        self._lock = threading.Lock()
        self._on: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
        #: How many ``PREPARE`` statements were sent (tests, metrics of the curious).
        self.prepares = 0

    def used(self, sql: str) -> None:
        """Count one use of ``sql`` (a statement with parameters) by a write."""
        if not self.enabled or sql in self._names:
            return
        with self._lock:  # a store's writes come from several threads: one name, one text
            n = self._uses.get(sql, 0) + 1
            if n >= HOT_AFTER and len(self._names) < MOST and sql not in self._refused:
                self._names[sql] = f"bw_w{self._count}"
                self._count += 1
                self._uses.pop(sql, None)
            elif len(self._uses) < 4 * MOST or sql in self._uses:
                self._uses[sql] = n

    async def ready(
        self, conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]
    ) -> dict[str, str]:
        """The statements prepared on ``conn`` (statement -> name), preparing the hot ones it
        lacks first; ``conn`` must be idle (not in a transaction)."""
        if not self.enabled:
            return {}
        have = self._on.get(conn)
        if have is None:
            have = self._on[conn] = {}
        if len(have) < len(self._names):
            for sql, name in list(self._names.items()):
                if sql in have:
                    continue
                try:
                    await run_statement(conn, f"PREPARE {name} AS {numbered(sql)}")
                except psycopg.errors.DuplicatePreparedStatement:
                    pass  # there already (a name is one statement for this process's life)
                except psycopg.OperationalError:
                    raise  # a lost connection: the write's own retries handle it
                except psycopg.Error:
                    self._refused.add(sql)  # e.g. a parameter whose type is not inferred
                    self._names.pop(sql, None)
                    continue
                else:
                    self.prepares += 1
                have[sql] = name
        return have

    def forget(self, conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> None:
        """``conn`` lost its prepared statements (its session was reset): prepare again."""
        self._on.pop(conn, None)
