"""The engine's reads: one entry (decoded or as stored JSON), batches of gets, listings.

Sans-I/O where it can be (:meth:`Reads.read_query` and the ``*_from_rows`` methods), so a backend
may run the statement synchronously or on an event loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._codec import decode, dumps
from .._errors import InvalidArgument
from .._types import Entry, KeyInfo, KeyPage, Op
from ._sqlbase import EngineBase, Tx
from ._sqlplan import Plan, drive
from ._sqltext import LIST, JSONEntry, live_sql, prefix_filter

#: keys per statement of ``plan_stored_bytes``: three parameters and one SELECT each (SQLite
#: allows 500 SELECTs in one compound statement)
STORED_BYTES_CHUNK = 100


class Reads(EngineBase):
    """Reads of entries and listings (see :class:`botwire.store.Engine`)."""

    def read_query(
        self, ns: str, key: str, tail: int | None, now: float, *, in_tx: bool = False
    ) -> tuple[str, list[Any]]:
        """The one consistent statement of a read (``?`` placeholders) and its parameters: the
        entry and, for a list, its (last ``tail``) items. Sans-I/O, so a backend may run it
        synchronously or on an event loop and hand the rows to :meth:`entry_from_rows` or
        :meth:`json_from_rows`. ``in_tx``: ``now`` is a write transaction's time, not
        ``clock()``'s (they differ with ``db_clock``)."""
        sqls = self._tx_read_sqls if in_tx else self._read_sqls
        if tail is None:
            return sqls[0], [ns, key, now]
        if tail < 0:
            raise InvalidArgument(
                f"botwire: tail={tail} for key {key!r} in namespace {ns!r}; use a count >= 0.",
                namespace=ns,
                key=key,
            )
        return sqls[1], [tail, tail, ns, key, now]

    def read_many_query(self, keys: Sequence[tuple[str, str]], now: float) -> tuple[str, list[Any]]:
        """:meth:`read_query` (``tail=None``) of several ``(namespace, key)`` pairs as one
        statement, PostgreSQL only (:func:`~botwire.store._sqltext.read_many_sql`): each row is
        the pair's 1-based position followed by :meth:`read_query`'s row, so the rows of one
        pair, in order, go to :meth:`json_from_rows` / :meth:`entry_from_rows` as they are."""
        return self._read_many_sql, [[k[0] for k in keys], [k[1] for k in keys], now]

    def read_many_within_query(
        self, keys: Sequence[tuple[str, str]], now: float, budget: int
    ) -> tuple[str, list[Any]]:
        """:meth:`read_many_query` behind a response budget, PostgreSQL only
        (:func:`~botwire.store._sqltext.read_many_within_sql`): the entries are read only when
        the bytes they would answer (:meth:`stored_bytes`) are at most ``budget``; each row then
        ends with the item's ``seq`` and that sum."""
        pairs = [[k[0] for k in keys], [k[1] for k in keys]]
        return self._read_many_within_sql, [*pairs, now, now, budget]

    def entry_from_rows(
        self, ns: str, key: str, tail: int | None, rows: Sequence[tuple[Any, ...]]
    ) -> Entry | None:
        """The :class:`Entry` that :meth:`read_query`'s rows describe, or ``None``."""
        if not rows:
            return None
        kind, value, version, created, updated, expires, _ = rows[0]
        if kind == LIST:
            value = decode("[" + ",".join(r[6] for r in rows if r[6] is not None) + "]")
        else:
            value = decode(value)
            if tail is not None:
                if not isinstance(value, list):
                    raise self._not_a_list(ns, key, value, "tail")
                value = value[-tail:] if tail else []
        return Entry(key, value, version, created, updated, expires)

    def json_from_rows(
        self, ns: str, key: str, tail: int | None, rows: Sequence[tuple[Any, ...]]
    ) -> JSONEntry | None:
        """Like :meth:`entry_from_rows`, but the value as its stored JSON text, not decoded.

        Stored text is always the engine's compact strict JSON (``dumps``), so it is exactly
        what encoding the decoded value would give: a server can splice it into a response.
        """
        if not rows:
            return None
        kind, text, version, created, updated, expires, _ = rows[0]
        if kind == LIST:
            text = "[" + ",".join(r[6] for r in rows if r[6] is not None) + "]"
        elif tail is not None:  # a JSON array stored by set(): slice it (rare)
            value = decode(text)
            if not isinstance(value, list):
                raise self._not_a_list(ns, key, value, "tail")
            text = dumps(value[-tail:] if tail else [])
        return text, version, created, updated, expires

    def _read_rows(
        self, tx: Tx, ns: str, key: str, tail: int | None, now: float, in_tx: bool = False
    ) -> list[tuple[Any, ...]]:
        return tx.all(*self.read_query(ns, key, tail, now, in_tx=in_tx))

    def read(self, tx: Tx, ns: str, key: str, tail: int | None, now: float) -> Entry | None:
        """The entry (for a list, its last ``tail`` items), or ``None``; one statement."""
        return self.entry_from_rows(ns, key, tail, self._read_rows(tx, ns, key, tail, now))

    def read_json(
        self, tx: Tx, ns: str, key: str, tail: int | None, now: float
    ) -> JSONEntry | None:
        """Like :meth:`read`, with the value as its stored JSON text (:meth:`json_from_rows`)."""
        return self.json_from_rows(ns, key, tail, self._read_rows(tx, ns, key, tail, now))

    def read_result(
        self, tx: Tx, ns: str, op: Op, now: float, in_tx: bool = False
    ) -> dict[str, Any]:
        """A ``get`` op's batch result."""
        rows = self._read_rows(tx, ns, op.key, op.tail, now, in_tx)
        return self.result_from_rows(ns, op, rows)

    def result_from_rows(self, ns: str, op: Op, rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        """A ``get`` op's batch result from the rows of its :meth:`read_query`."""
        entry = self.entry_from_rows(ns, op.key, op.tail, rows)
        if entry is None:
            return {"found": False}
        return {
            "found": True,
            "value": entry.value,
            "version": entry.version,
            "created_at": entry.created_at,
            "updated_at": entry.updated_at,
            "expires_at": entry.expires_at,
        }

    def result_json_from_rows(self, ns: str, op: Op, rows: Sequence[tuple[Any, ...]]) -> str:
        """:meth:`result_from_rows` as JSON text, the value spliced in as stored (no decode:
        a stored value of a million ``[]`` costs its bytes here, not a million objects)."""
        found = self.json_from_rows(ns, op.key, op.tail, rows)
        if found is None:
            return '{"found":false}'
        text, version, created, updated, expires = found
        return (
            f'{{"found":true,"value":{text},"version":{dumps(version)},'
            f'"created_at":{dumps(created)},"updated_at":{dumps(updated)},'
            f'"expires_at":{dumps(expires)}}}'
        )

    def stored_bytes(self, tx: Tx, ns: str, keys: Sequence[str], now: float) -> int:
        """Bytes of JSON (key + value) that reading ``keys`` would return, a key counted as
        often as it is named; what a response budget is checked against before reading."""
        return drive(tx, self.plan_stored_bytes(ns, keys, now))

    def plan_stored_bytes(self, ns: str, keys: Sequence[str], now: float) -> Plan[int]:
        """:meth:`stored_bytes` sans-I/O (``_sqlplan``), for a backend reading on an event
        loop."""
        wanted: dict[str, int] = {}
        for key in keys:
            wanted[key] = wanted.get(key, 0) + 1
        total = 0
        # the reads' own test of a live entry: on PostgreSQL ``now`` is an offset to the
        # database's clock, which a bare ``expires_at > ?`` took for a time (every entry live)
        live = live_sql(self._now_sql)
        names = list(wanted)
        for start in range(0, len(names), STORED_BYTES_CHUNK):  # bounded statement size
            chunk = names[start : start + STORED_BYTES_CHUNK]
            # One primary-key look-up per key, not ``key IN (...)``: on a table that grew
            # since PostgreSQL analyzed it, its planner read such a list as the whole
            # namespace through bw_entries_version, filtered by key (0.9 ms per LangGraph
            # get_tuple at ~1,100 entries, growing with them; tests/postgres/test_budget_plan).
            params: list[Any] = []
            for key in chunk:
                params += (ns, key, now)
            one = f"SELECT e.key, e.bytes FROM bw_entries e WHERE e.ns = ? AND e.key = ? AND {live}"
            rows = yield ("all", " UNION ALL ".join([one] * len(chunk)), params)
            total += sum(int(size) * wanted[key] for key, size in rows)
        return total

    def list_keys(
        self, tx: Tx, ns: str, prefix: str, cursor: str | None, limit: int, now: float
    ) -> KeyPage:
        if not 1 <= limit <= 1000:
            raise InvalidArgument(
                f"botwire: limit={limit} when listing namespace {ns!r}; use 1 to 1000.",
                namespace=ns,
            )
        where, params = prefix_filter("key", prefix, cursor)
        rows = tx.all(
            "SELECT key, version, bytes, updated_at, expires_at FROM bw_entries"
            f" WHERE ns = ? AND (expires_at IS NULL OR expires_at > {self._now_sql}){where}"
            " ORDER BY key LIMIT ?",
            [ns, now, *params, limit + 1],
        )
        more = len(rows) > limit
        keys = [KeyInfo(*r) for r in rows[:limit]]
        return KeyPage(keys, keys[-1].key if more else None)

    def list_namespaces(
        self, tx: Tx, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, int, int]]:
        """``(namespace, keys, bytes)`` of up to ``limit`` namespaces holding keys, in byte
        order after ``after``, from the statistics rows (expired entries not yet purged still
        count there)."""
        where, params = prefix_filter("ns", prefix, after)
        rows = tx.all(
            f"SELECT ns, keys, bytes FROM bw_namespaces WHERE keys > 0{where} ORDER BY ns LIMIT ?",
            [*params, limit],
        )
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def recent_keys(self, tx: Tx, ns: str, limit: int, now: float) -> list[tuple[str, int, float]]:
        """(key, bytes, updated_at) of the ``limit`` most recently updated live keys, newest
        first in commit order (their versions; the keys of one batch, which share a version, in
        descending key order), read along the change feed's ``(ns, version)`` index: no sort of
        the namespace (PostgreSQL sorts only the keys that share a version). Commit order, not
        the clocks': a replica whose clock lags cannot put its writes behind older ones."""
        rows = tx.all(
            "SELECT key, bytes, updated_at FROM bw_entries"
            " WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?)"
            " ORDER BY version DESC, key DESC LIMIT ?",
            (ns, now, limit),
        )
        return [(r[0], int(r[1]), float(r[2])) for r in rows]
