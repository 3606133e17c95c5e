"""PostgreSQL's side of the change feed (issue 18, watch): ``changes`` and the tombstones'
pruning, a mixin of :class:`~botwire_server.storage.postgres.PostgresStore` (kept apart for
its size). The server wakes its waiters by LISTEN/NOTIFY (``botwire_server.watch``); a
``changes(wait=)`` called on the store itself re-reads every :data:`WATCH_POLL` seconds."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from botwire.store import Changes
from botwire.store._sqlwatch import PRUNE_BATCH, check_changes_args

from ._pg_tx import PgTx

if TYPE_CHECKING:
    from botwire.store._sql import Engine

__all__ = ["BEGIN_READ", "WATCH_POLL", "PgWatch"]

#: How often a waiting ``changes`` called on the store itself re-reads.
WATCH_POLL = 0.05
BEGIN_READ = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


class PgWatch:
    """``changes`` and ``prune_tombstones`` over the store's ``engine``, ``clock``, ``_run``
    and ``_write``."""

    engine: Engine
    clock: Callable[[], float]
    _run: Callable[..., Any]
    _write: Callable[..., Any]

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
        one ``REPEATABLE READ`` snapshot; ``wait`` > 0 re-reads every :data:`WATCH_POLL` s
        until a change or the time is up (a server wakes its waiters by LISTEN/NOTIFY)."""
        check_changes_args(namespace, prefix, after, limit)
        deadline = time.monotonic() + max(0.0, float(wait))

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> Changes:
            conn.execute(BEGIN_READ)
            try:
                found = self.engine.changes(
                    PgTx(conn), namespace, prefix, after, limit, self._now_for_read(conn)
                )
            finally:
                conn.execute(b"COMMIT")
            return found

        while True:
            found: Changes = self._run(body)
            left = deadline - time.monotonic()
            if found.entries or after is None or left <= 0:
                return found
            time.sleep(min(WATCH_POLL, left))

    def high_waters(self, namespaces: list[str]) -> dict[str, int]:
        """Each namespace's highest version (``Engine.high_water``) in one snapshot: what the
        server's watch polls behind a transaction pooler, where LISTEN is lost."""

        def body(conn: psycopg.Connection[Any], sent: list[bool]) -> dict[str, int]:
            conn.execute(BEGIN_READ)
            try:
                tx = PgTx(conn)
                return {ns: int(self.engine.high_water(tx, ns)) for ns in namespaces}
            finally:
                conn.execute(b"COMMIT")

        found: dict[str, int] = self._run(body)
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
