"""Where a list's rows go when they leave it: a backend hook of the engine (``Engine.rows``).

:class:`ListRows` (the default, PostgreSQL) deletes them in the write itself.
:class:`DeferredRows` (SQLite, one writer at a time) does a long trim or delete logically: the
entry's head moves, or the entry goes, at once, and the rows are left below a floor in
``bw_trash`` for :meth:`DeferredRows.sweep` to remove in chunks (a 100k-row delete held every
other SQLite writer 129-406 ms, issue 13)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgument
from ._sqlplan import Plan, drive
from ._sqltext import list_hash

if TYPE_CHECKING:
    from ._sqlbase import Tx

__all__ = ["DeferredRows", "ListRows"]


#: The rows of one list, by the index PostgreSQL keeps for them (``list_hash``, schema 7). The
#: name is compared with IS NOT DISTINCT FROM (both NOT NULL: the same test), which no index
#: serves: with ``ns = ?`` a generic plan scanned ``bw_items_ns``, every item of the namespace,
#: and filtered them (a list dropped beside a 100,000-item list: 7.4 ms; 0.06 by its own index).
_HASHED = (
    f"{list_hash('ns', 'key')} = {list_hash('?::text', '?::text')}"
    " AND (ns, key) IS NOT DISTINCT FROM (?::text, ?::text)"
)


class ListRows:
    """List rows removed at once, in the write that drops them. ``hashed`` (PostgreSQL): one
    list's rows are found by :func:`~botwire.store._sqltext.list_hash` and ``seq``."""

    def __init__(self, *, hashed: bool = False) -> None:
        self.hashed = hashed

    def match(self, ns: str, key: str) -> tuple[str, tuple[Any, ...]]:
        """The condition on ``bw_items`` that finds the rows of list ``key``, and its
        parameters (first in the statement's).

        Example::

            where, params = rows.match("user-42", "chat")
            ("run", f"DELETE FROM bw_items WHERE {where}", params)
        """
        if self.hashed:
            return _HASHED, (ns, key, ns, key)
        return "ns = ? AND key = ?", (ns, key)

    def plan_drop(self, ns: str, key: str, length: int, tail: int) -> Plan[None]:
        """Remove a list's rows (its entry is going)."""
        where, params = self.match(ns, key)
        yield ("run", f"DELETE FROM bw_items WHERE {where}", params)

    def plan_floor(self, ns: str, key: str) -> Plan[int]:
        """Where a new list of ``key`` starts."""
        return 0
        yield  # a plan (generator) that asks nothing

    def clear(self, tx: Tx, ns: str) -> None:
        """Remove the rows of every list of the namespace (it is being cleared)."""
        tx.run("DELETE FROM bw_items WHERE ns = ?", (ns,))

    def plan_trim(
        self, ns: str, key: str, head: int, tail: int, keep: int, content: int
    ) -> Plan[int]:
        """Drop the list's items below ``tail - keep`` (``[head, tail)`` are live); return the
        content bytes left."""
        where, params = self.match(ns, key)
        gone = yield (
            "all",
            f"DELETE FROM bw_items WHERE {where} AND seq >= ? AND seq < ? RETURNING bytes",
            (*params, head, tail - keep),
        )
        return content - sum(int(r[0]) for r in gone)


class DeferredRows(ListRows):
    """More than ``limit`` rows are left in ``bw_trash`` for :meth:`sweep`; ``trashed`` tells
    the backend that there is something to sweep."""

    def __init__(self, limit: int, *, trashed: bool = False) -> None:
        if limit < 1:
            raise InvalidArgument(f"botwire: DeferredRows(limit={limit}); use a limit >= 1.")
        super().__init__()
        self.limit = limit
        self.trashed = trashed

    def plan_trash(self, ns: str, key: str, below: int) -> Plan[None]:
        """Mark every list row of ``key`` with ``seq < below`` as garbage for :meth:`sweep`."""
        yield (
            "run",
            "INSERT INTO bw_trash (ns, key, below) VALUES (?, ?, ?) ON CONFLICT (ns, key)"
            " DO UPDATE SET below = CASE WHEN below > excluded.below THEN below"
            " ELSE excluded.below END",
            (ns, key, below),
        )
        self.trashed = True

    def plan_drop(self, ns: str, key: str, length: int, tail: int) -> Plan[None]:
        """At once when few, else left to :meth:`sweep` below the list's ``tail``."""
        if length > self.limit:
            yield from self.plan_trash(ns, key, tail)
        else:
            yield from super().plan_drop(ns, key, length, tail)

    def plan_floor(self, ns: str, key: str) -> Plan[int]:
        """Above any leftovers of an earlier list of ``key``."""
        row = yield ("one", "SELECT below FROM bw_trash WHERE ns = ? AND key = ?", (ns, key))
        return int(row[0]) if row is not None else 0

    def clear(self, tx: Tx, ns: str) -> None:
        # long lists (and any with leftovers) are swept later; the rest go now
        long = tx.all(
            "SELECT key, tail FROM bw_entries WHERE ns = ? AND kind = 1 AND (length > ?"
            " OR key IN (SELECT key FROM bw_trash WHERE ns = ?))",
            (ns, self.limit, ns),
        )
        for key, tail in long:
            drive(tx, self.plan_trash(ns, key, int(tail)))
        tx.run(
            "DELETE FROM bw_items WHERE ns = ? AND key NOT IN"
            " (SELECT key FROM bw_trash WHERE ns = ?)",
            (ns, ns),
        )

    def plan_trim(
        self, ns: str, key: str, head: int, tail: int, keep: int, content: int
    ) -> Plan[int]:
        """A long trim only moves the head: reads skip the rows below it and :meth:`sweep`
        removes them later; the bytes are summed over whichever side is shorter, the trimmed
        or the kept rows."""
        new_head = tail - keep
        trimmed = new_head - head
        if trimmed <= self.limit:
            return (yield from super().plan_trim(ns, key, head, tail, keep, content))
        lo, hi = (new_head, tail) if keep < trimmed else (head, new_head)
        row = yield (
            "one",
            "SELECT coalesce(sum(bytes), 0) FROM bw_items"
            " WHERE ns = ? AND key = ? AND seq >= ? AND seq < ?",
            (ns, key, lo, hi),
        )
        summed = int(row[0]) if row is not None else 0
        yield from self.plan_trash(ns, key, new_head)
        return summed if keep < trimmed else content - summed

    def sweep(self, tx: Tx, limit: int) -> int:
        """Remove up to ``limit`` garbage list rows of one trashed list: the number removed,
        0 when that list was done (its mark dropped), -1 when nothing is left to sweep."""
        mark = tx.one("SELECT ns, key, below FROM bw_trash LIMIT 1")
        if mark is None:
            return -1
        ns, key, below = mark
        low = tx.one(
            "SELECT min(seq) FROM bw_items WHERE ns = ? AND key = ? AND seq < ?", (ns, key, below)
        )
        if low is None or low[0] is None:
            tx.run("DELETE FROM bw_trash WHERE ns = ? AND key = ? AND below = ?", mark)
            return 0
        upto = min(int(below), int(low[0]) + limit)
        gone = tx.all(
            "DELETE FROM bw_items WHERE ns = ? AND key = ? AND seq >= ? AND seq < ? RETURNING seq",
            (ns, key, low[0], upto),
        )
        return len(gone)
