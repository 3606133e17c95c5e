"""Group commit for the embedded store: several callers' batches in one SQLite transaction.

A SQLite write transaction costs its ``BEGIN IMMEDIATE`` (file locks) and its ``COMMIT`` (the
WAL append, and the locks again) whatever it holds: measured on the development machine, 50 of
the ~115-185 µs of a one-key SET or APPEND. The server collects the writes that arrive together
(``botwire_server.storage._group``) and hands them here: each runs in a savepoint of its own
inside one transaction, so one request's error (a version conflict, a quota) rolls back that
request alone; one ``COMMIT`` makes them all durable, and only then is any of them answered.

Anything that goes wrong below the requests themselves (a full disk, an I/O error, a file
removed under the store, any error that is not botwire's own) rolls the whole group back and
runs every batch again on its own through :meth:`SQLiteStore.batch`, with that method's exact
handling (the reserve released and one more try for deletes, botwire's error for a full disk):
a failure of one request's write never undoes another's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import BotWireError, Unavailable
from .._types import Op
from ._guard import FileGuard
from ._sqlbase import check_batch_size, fingerprint
from ._sqlplan import Plan
from ._sqltext import GROUP_RELEASE_SQL, GROUP_ROLLBACK_SQL, GROUP_SAVEPOINT_SQL

if TYPE_CHECKING:
    from ._sql import Engine
    from ._sqlitefile import SQLiteTx
    from ._sqlrows import DeferredRows

__all__ = ["GroupCall", "GroupCommitMixin", "HeavyWrite"]

#: One caller's batch: ``(namespace, ops, atomic, idempotency_key)``.
GroupCall = tuple[str, Sequence[Op], bool, "str | None"]
#: Frees space (a full disk lets it through): the same set as ``_sqlite._FREEING``.
_FREEING = frozenset(("delete", "check", "get"))


class HeavyWrite(Exception):
    """A ``light`` batch would remove a list's rows (a set or delete over a list, up to
    ``DEFER_ROWS`` of them, ~2 ms): it was rolled back, to be run again off the event loop."""


class _LightRows:
    """The store's :class:`~botwire.store._sqlrows.DeferredRows` for a ``light`` batch: dropping
    a list raises :class:`HeavyWrite`; trims (a policy's, on an append) stay as they are."""

    def __init__(self, rows: DeferredRows) -> None:
        self._rows = rows

    def plan_drop(self, ns: str, key: str, length: int, tail: int) -> Plan[None]:
        # The engine's plan asks for the drop (issue 22's sans-I/O rename of ``drop``): refuse
        # it here, before any row goes; the batch is rolled back and run again in a thread.
        raise HeavyWrite(f"botwire: {ns!r}/{key!r} is a list of {length} items")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rows, name)


class GroupCommitMixin:
    """:meth:`batch_group` over the store's connection, lock, engine and guard."""

    engine: Engine
    clock: Callable[[], float]
    auto_sweep: bool
    _lock: threading.RLock
    _conn: sqlite3.Connection
    _tx: SQLiteTx
    _guard: FileGuard | None
    _rows: DeferredRows
    _begin: Callable[[sqlite3.Connection], None]
    _after_write: Callable[[], None]
    batch: Callable[..., list[dict[str, Any]]]
    sweep: Callable[..., int]

    def batch_group(
        self, calls: Sequence[GroupCall], *, light: bool = False
    ) -> list[list[dict[str, Any]] | Exception]:
        """Apply several batches (``(namespace, ops, atomic, idempotency_key)`` each, in that
        order) in one transaction and one commit; return, in order, each one's results or the
        :class:`~botwire.BotWireError` it raised. Every batch is as :meth:`batch` would apply
        it alone at that point of the order (versions, quotas, idempotency records see the
        batches before it), and nothing is committed until all of them ran.

        Example::

            out = store.batch_group([("user-1", [Op("set", "a", value="1")], True, None),
                                     ("user-2", [Op("append", "l", items=("2",))], True, None)])
        """
        guard = self._guard
        if len(calls) < 2 or (guard is not None and guard.full_since is not None):
            # nothing to share / the full disk's rules
            return [self._alone(call, light) for call in calls]
        out: list[list[dict[str, Any]] | Exception] = []
        tx = self._tx
        with self._lock:
            conn = self._conn
            try:
                self._begin(conn)
            except Unavailable as exc:  # busy for the whole timeout: each alone would wait too
                return [exc for _ in calls]
            try:
                for namespace, ops, atomic, ikey in calls:
                    conn.execute(GROUP_SAVEPOINT_SQL)
                    try:
                        check_batch_size(namespace, len(ops))
                        digest = fingerprint(ops, atomic) if ikey is not None else None
                        out.append(
                            self._apply_light(namespace, ops, atomic, ikey, digest, self.clock())
                            if light
                            else self.engine.apply(
                                tx,
                                namespace,
                                ops,
                                atomic=atomic,
                                idempotency_key=ikey,
                                fingerprint=digest,
                                now=self.clock(),
                            )
                        )
                    except (BotWireError, HeavyWrite) as exc:
                        conn.execute(GROUP_ROLLBACK_SQL)
                        # the rollback may have undone a version block reserved in it
                        tx.versions.drop()
                        out.append(exc)
                    conn.execute(GROUP_RELEASE_SQL)
                if guard is not None:
                    guard.check_file()  # never acknowledge into a removed file
                conn.execute("COMMIT")
            except Exception:
                tx.versions.drop()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                failed = True
            except BaseException:
                tx.versions.drop()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                failed = False
        if failed:
            # Below the requests (disk, file, a bug): each alone, with batch()'s own handling.
            return [self._alone(call, light) for call in calls]
        for (_ns, ops, _atomic, _ikey), result in zip(calls, out, strict=True):
            if isinstance(result, Exception):
                continue
            if guard is not None:
                guard.on_success(not all(op.kind in _FREEING for op in ops))
            self._after_write()
        if self._rows.trashed and self.auto_sweep:
            self.sweep()
        return out

    def _alone(self, call: GroupCall, light: bool) -> list[dict[str, Any]] | Exception:
        """One batch in its own transaction (:meth:`batch`), its failure returned."""
        namespace, ops, atomic, ikey = call
        try:
            if light:
                return self.batch(namespace, ops, atomic=atomic, idempotency_key=ikey, light=True)
            return self.batch(namespace, ops, atomic=atomic, idempotency_key=ikey)
        except Exception as exc:
            return exc

    def _apply_light(
        self,
        namespace: str,
        ops: Sequence[Op],
        atomic: bool,
        ikey: str | None,
        digest: str | None,
        now: float,
    ) -> list[dict[str, Any]]:
        """``engine.apply`` raising :class:`HeavyWrite` where it would drop a list's rows (the
        caller holds the store's lock: no other write uses the engine meanwhile)."""
        engine = self.engine
        rows = engine.rows
        engine.rows = _LightRows(self._rows)  # type: ignore[assignment]
        try:
            return engine.apply(
                self._tx,
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=ikey,
                fingerprint=digest,
                now=now,
            )
        finally:
            engine.rows = rows
