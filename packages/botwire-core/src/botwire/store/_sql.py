"""The semantics of every operation, written once over SQL for SQLite and PostgreSQL.

A backend supplies a :class:`Tx` (a transaction it has begun) and a way to allocate versions;
this module does the rest: conditions, lists, counters, TTL, limits, quotas and idempotency.
Every write first locks its namespace's statistics row, so the writes of one namespace are
serialized — which makes version checks and quotas exact, on one machine or many.

Schema (both engines)::

    bw_entries(ns, key, kind, value, version, created_at, updated_at, expires_at,
               bytes, length, head, tail)        -- kind 0: JSON text in value; 1: list
    bw_items(ns, key, seq, value, bytes)         -- list items, seq in [head, tail)
    bw_namespaces(ns, keys, bytes, day, writes)  -- statistics and the per-namespace lock
    bw_idempotency(ns, ikey, fingerprint, created_at, response)
                                                 -- fingerprint: "<sha256> <key or *>"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .._codec import decode, dumps
from .._errors import (
    BotWireError,
    Conflict,
    InvalidArgument,
    NotSerializable,
    QuotaExceeded,
    TypeMismatch,
    ValueTooLarge,
)
from .._types import Entry, KeyInfo, KeyPage, Limits, Op, Usage

__all__ = [
    "IDEMPOTENCY_SECONDS",
    "MAX_BATCH_OPS",
    "Engine",
    "Tx",
    "check_batch_size",
    "fingerprint",
    "idempotency_query",
    "prefix_upper_bound",
]

# (value as JSON text, version, created_at, updated_at, expires_at)
JSONEntry = tuple[str, int, float, float, float | None]
VALUE, LIST = 0, 1
DAY = 86400.0
IDEMPOTENCY_SECONDS = 86400.0
MAX_BATCH_OPS = 1000  # ops per transaction, like Deno KV's 1000 mutations per commit
#: Idempotency records kept per namespace (oldest dropped first) ...
MAX_IDEMPOTENCY_RECORDS = 1000
#: ... and UTF-8 bytes of their answers, when the namespace has no byte limit ...
IDEMPOTENCY_BUDGET = 16 * 1024 * 1024
#: ... checked when an answer over this many bytes is kept (smaller ones total at most
#: MAX_IDEMPOTENCY_RECORDS * SMALL_RECORD = 4 MiB per namespace).
SMALL_RECORD = 4096
_ENTRY_COLS = "kind, value, version, created_at, updated_at, expires_at, bytes, length, head, tail"


SQLITE_OCTETS = "length(CAST(response AS BLOB))"
PG_OCTETS = "octet_length(response)"


def recount_sql(octets: str) -> str:
    """The statement that sets every namespace's bytes to its entries' plus its kept answers'
    (a one-time recount on upgrade: records kept before they were counted, or counted in
    characters, issue 13)."""
    return (
        "UPDATE bw_namespaces SET bytes = (SELECT coalesce(sum(e.bytes), 0) FROM bw_entries e"
        " WHERE e.ns = bw_namespaces.ns) + (SELECT coalesce(sum("
        + octets.replace("response", "i.response")
        + "), 0) FROM bw_idempotency i WHERE i.ns = bw_namespaces.ns)"
    )


def _read_sql(item_filter: str, now_sql: str = "?") -> str:
    return (
        "SELECT e.kind, e.value, e.version, e.created_at, e.updated_at, e.expires_at, i.value"
        " FROM bw_entries e LEFT JOIN bw_items i"
        f" ON e.kind = 1 AND i.ns = e.ns AND i.key = e.key{item_filter}"
        f" WHERE e.ns = ? AND e.key = ? AND (e.expires_at IS NULL OR e.expires_at > {now_sql})"
        " ORDER BY i.seq"
    )


# Engine.read_query's two statements (the text of each is constant: backends cache per text).
# Rows below the entry's head are a trimmed or deleted list's leftovers, not yet swept
# (Engine.sweep): never read. One lower bound per statement, so the index range starts there.
_HEAD_FILTER = " AND i.seq >= e.head"
_TAIL_FILTER = " AND i.seq >= CASE WHEN e.head > e.tail - ? THEN e.head ELSE e.tail - ? END"
_READ_SQL = _read_sql(_HEAD_FILTER)
_READ_TAIL_SQL = _read_sql(_TAIL_FILTER)
# The database clock (PostgreSQL), for every replica to agree on "now": ``?`` binds an offset
# (0, or a testing clock's) instead of a time. Reads use the statement's start; a write takes
# its time once, right after its namespace lock is granted (``clock_timestamp()`` in the
# lock's RETURNING), so a namespace's times follow its commit order whatever the replicas say.
DB_NOW_SQL = "(extract(epoch from statement_timestamp())::float8 + ?)"
DB_LOCK_NOW_SQL = "(extract(epoch from clock_timestamp())::float8 + ?)"


#: Op kinds whose results carry stored values (kept idempotency answers must not outlive them).
_VALUE_KINDS = frozenset(("get", "pop", "incr"))


class Tx(Protocol):
    """A transaction begun by the backend; SQL uses ``?`` placeholders."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


@dataclass(slots=True)
class _Row:
    kind: int
    value: str | None
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None
    bytes: int
    length: int
    head: int
    tail: int


@dataclass(slots=True)
class _Stats:
    keys: int
    bytes: int
    day: int
    writes: int

    def copy(self) -> _Stats:
        return _Stats(self.keys, self.bytes, self.day, self.writes)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (UTF-8 order)."""
    chars = list(prefix)
    while chars:
        c = ord(chars.pop()) + 1
        if c == 0xD800:
            c = 0xE000  # surrogates are not UTF-8; skip them
        if c <= 0x10FFFF:
            return "".join(chars) + chr(c)
    return None


def idempotency_query(ns: str, ikey: str) -> tuple[str, tuple[Any, ...]]:
    """The one statement that looks up a request's idempotency record: (fingerprint, response,
    records kept in the namespace); fingerprint and response are NULL when there is none."""
    return (
        "SELECT i.fingerprint, i.response, s.n FROM (SELECT count(*) AS n FROM bw_idempotency"
        " WHERE ns = ?) s LEFT JOIN bw_idempotency i ON i.ns = ? AND i.ikey = ?",
        (ns, ns, ikey),
    )


def check_batch_size(ns: str, count: int) -> None:
    if count > MAX_BATCH_OPS:
        raise InvalidArgument(
            f"botwire: a batch on namespace {ns!r} has {count} ops; the limit is "
            f"{MAX_BATCH_OPS}. Split it into several batches.",
            namespace=ns,
        )


def fingerprint(ops: Sequence[Op], atomic: bool) -> str:
    """A digest of a request, stored with its idempotency key to catch a reused key."""
    import hashlib

    text = repr((atomic, [tuple(getattr(op, f) for f in op.__slots__) for op in ops]))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _list_bytes(key_bytes: int, content: int, length: int) -> int:
    """Bytes of a list as JSON (``[a,b]``) plus its key, whatever its layout."""
    return key_bytes + 2 + content + max(length - 1, 0)


class Engine:
    """Applies operations inside a backend's transaction (see module docstring)."""

    def __init__(
        self,
        *,
        limits: Limits,
        clock: Callable[[], float],
        next_version: Callable[[Tx], int],
        lock_first: bool = True,
        db_clock: bool = False,
        octets: str = SQLITE_OCTETS,
    ) -> None:
        """``lock_first=False`` is for a backend whose write transactions already exclude each
        other (SQLite's ``BEGIN IMMEDIATE``): the statistics row then needs no lock, so a write
        reads it only when a limit needs its totals and adds its changes in one upsert at the
        end, one statement fewer (two without limits) than locking it first.

        ``db_clock=True`` (PostgreSQL) takes "now" from the database in the statements that
        need it, not from ``clock``: ``clock`` then returns an offset in seconds added to the
        database's time (0.0, or a testing clock's), and every ``now`` passed to a method that
        runs outside a write transaction is that offset. Inside a write, the time returned with
        the namespace lock is used (no extra statement). Requires ``lock_first``."""
        self.limits = limits
        self.clock = clock
        #: SQL for the UTF-8 bytes of a kept answer (SQLite before 3.43 has no octet_length)
        self.octets = octets
        self._next_version = next_version
        self._lock_first = lock_first or db_clock
        self.db_clock = db_clock
        now_sql = DB_NOW_SQL if db_clock else "?"
        self._now_sql = now_sql
        self._read_sqls = (_read_sql(_HEAD_FILTER, now_sql), _read_sql(_TAIL_FILTER, now_sql))
        # List limits (0 = unlimited), checked in the write transaction; a server sets them so
        # that no request has to read, write or trim an unbounded number of rows (issue 13).
        self.max_append_items = 0
        self.max_list_length = 0
        self.max_list_bytes = 0
        #: A trim or delete of more list rows than this (0: never) is done logically: the
        #: entry's head moves, or the entry goes, at once; the rows are left below a floor in
        #: ``bw_trash`` for :meth:`sweep` to remove in chunks (a backend with that table and
        #: one writer at a time, SQLite, sets it: there a 100k-row delete held every other
        #: writer 129-406 ms, issue 13). ``trashed`` tells the backend to sweep.
        self.defer_rows = 0
        self.trashed = False

    # -- reads -------------------------------------------------------------------------------

    def read_query(
        self, ns: str, key: str, tail: int | None, now: float, *, in_tx: bool = False
    ) -> tuple[str, list[Any]]:
        """The one consistent statement of a read (``?`` placeholders) and its parameters: the
        entry and, for a list, its (last ``tail``) items. Sans-I/O, so a backend may run it
        synchronously or on an event loop and hand the rows to :meth:`entry_from_rows` or
        :meth:`json_from_rows`. ``in_tx``: ``now`` is a write transaction's time, not
        ``clock()``'s (they differ with ``db_clock``)."""
        sqls = (_READ_SQL, _READ_TAIL_SQL) if in_tx else self._read_sqls
        if tail is None:
            return sqls[0], [ns, key, now]
        if tail < 0:
            raise InvalidArgument(
                f"botwire: tail={tail} for key {key!r} in namespace {ns!r}; use a count >= 0.",
                namespace=ns,
                key=key,
            )
        return sqls[1], [tail, tail, ns, key, now]

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

    def read_json(self, tx: Tx, ns: str, key: str, tail: int | None, now: float
                  ) -> JSONEntry | None:
        """Like :meth:`read`, with the value as its stored JSON text (:meth:`json_from_rows`)."""
        return self.json_from_rows(ns, key, tail, self._read_rows(tx, ns, key, tail, now))

    def read_result(
        self, tx: Tx, ns: str, op: Op, now: float, in_tx: bool = False
    ) -> dict[str, Any]:
        """A ``get`` op's batch result."""
        rows = self._read_rows(tx, ns, op.key, op.tail, now, in_tx)
        return self.result_from_rows(ns, op, rows)

    def result_from_rows(
        self, ns: str, op: Op, rows: Sequence[tuple[Any, ...]]
    ) -> dict[str, Any]:
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
        return (f'{{"found":true,"value":{text},"version":{dumps(version)},'
                f'"created_at":{dumps(created)},"updated_at":{dumps(updated)},'
                f'"expires_at":{dumps(expires)}}}')

    def stored_bytes(self, tx: Tx, ns: str, keys: Sequence[str], now: float) -> int:
        """Bytes of JSON (key + value) that reading ``keys`` would return, a key counted as
        often as it is named; what a response budget is checked against before reading."""
        wanted: dict[str, int] = {}
        for key in keys:
            wanted[key] = wanted.get(key, 0) + 1
        total = 0
        names = list(wanted)
        for start in range(0, len(names), 500):  # bounded statement size
            chunk = names[start:start + 500]
            rows = tx.all(
                "SELECT key, bytes FROM bw_entries WHERE ns = ? AND key IN ("
                + ",".join("?" * len(chunk))
                + ") AND (expires_at IS NULL OR expires_at > ?)",
                [ns, *chunk, now],
            )
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
        sql = (
            "SELECT key, version, bytes, updated_at, expires_at FROM bw_entries"
            f" WHERE ns = ? AND (expires_at IS NULL OR expires_at > {self._now_sql})"
        )
        params: list[Any] = [ns, now]
        if prefix:
            sql += " AND key >= ?"
            params.append(prefix)
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                sql += " AND key < ?"
                params.append(upper)
        if cursor:
            sql += " AND key > ?"
            params.append(cursor)
        sql += " ORDER BY key LIMIT ?"
        params.append(limit + 1)
        rows = tx.all(sql, params)
        more = len(rows) > limit
        keys = [KeyInfo(*r) for r in rows[:limit]]
        return KeyPage(keys, keys[-1].key if more else None)

    def recent_keys(self, tx: Tx, ns: str, limit: int, now: float
                    ) -> list[tuple[str, int, float]]:
        """(key, bytes, updated_at) of the ``limit`` most recently updated live keys, newest
        first (the keys of one batch, which share a time and version, in descending key order),
        read along the ``(ns, updated_at, version, key)`` index: no sort of the namespace."""
        rows = tx.all(
            "SELECT key, bytes, updated_at FROM bw_entries"
            " WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?)"
            " ORDER BY updated_at DESC, version DESC, key DESC LIMIT ?",
            (ns, now, limit),
        )
        return [(r[0], int(r[1]), float(r[2])) for r in rows]

    # -- writes ------------------------------------------------------------------------------

    def lock_namespace(self, tx: Tx, ns: str, now: float) -> _Stats:
        """Take the namespace's write lock (its statistics row) and return the statistics."""
        return self.lock_namespace_at(tx, ns, now)[0]

    def lock_namespace_at(self, tx: Tx, ns: str, now: float) -> tuple[_Stats, float]:
        """:meth:`lock_namespace`, and the transaction's time: ``now`` itself, or with
        ``db_clock`` the database's time once the lock is granted (same statement)."""
        if self.db_clock:
            row = tx.one(
                "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes)"
                f" VALUES (?, 0, 0, floor({DB_LOCK_NOW_SQL} / 86400)::bigint, 0)"
                " ON CONFLICT (ns) DO UPDATE SET ns = excluded.ns"
                f" RETURNING keys, bytes, day, writes, {DB_LOCK_NOW_SQL}",
                (ns, now, now),
            )
            assert row is not None
            now = float(row[4])
            row = row[:4]
        else:
            row = tx.one(
                "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes) VALUES (?, 0, 0, ?, 0)"
                " ON CONFLICT (ns) DO UPDATE SET ns = excluded.ns"
                " RETURNING keys, bytes, day, writes",
                (ns, int(now // DAY)),
            )
            assert row is not None
        stats = _Stats(*row)
        today = int(now // DAY)
        if stats.day != today:
            stats.day, stats.writes = today, 0
        return stats, now

    def save_namespace(self, tx: Tx, ns: str, stats: _Stats) -> None:
        tx.run(
            "UPDATE bw_namespaces SET keys = ?, bytes = ?, day = ?, writes = ? WHERE ns = ?",
            (stats.keys, stats.bytes, stats.day, stats.writes, ns),
        )

    def _peek_namespace(self, tx: Tx, ns: str, now: float) -> _Stats:
        """The statistics without locking them (``lock_first=False``); zero when absent."""
        today = int(now // DAY)
        row = tx.one("SELECT keys, bytes, day, writes FROM bw_namespaces WHERE ns = ?", (ns,))
        stats = _Stats(*row) if row is not None else _Stats(0, 0, today, 0)
        if stats.day != today:
            stats.day, stats.writes = today, 0
        return stats

    def _add_namespace(self, tx: Tx, ns: str, stats: _Stats, base: _Stats) -> None:
        """Add ``stats - base`` to the statistics row (created if absent) in one statement; a
        new UTC day restarts the write count, as :meth:`lock_namespace` does."""
        keys, size, writes = stats.keys - base.keys, stats.bytes - base.bytes, \
            stats.writes - base.writes
        if not (keys or size or writes):
            return
        tx.run(
            "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (ns) DO UPDATE SET keys = keys + excluded.keys,"
            " bytes = bytes + excluded.bytes, writes = CASE WHEN day = excluded.day"
            " THEN writes + excluded.writes ELSE excluded.writes END, day = excluded.day",
            (ns, keys, size, stats.day, writes),
        )

    def apply(
        self,
        tx: Tx,
        ns: str,
        ops: Sequence[Op],
        *,
        atomic: bool,
        idempotency_key: str | None,
        fingerprint: str | None,
        now: float,
    ) -> list[dict[str, Any]]:
        """Apply a batch under the namespace lock; raise (atomic) or record per-op errors."""
        check_batch_size(ns, len(ops))
        mutating = any(op.mutates for op in ops)
        base: _Stats | None = None
        if self._lock_first and mutating:  # gets and checks take no lock and create no row
            stats, now = self.lock_namespace_at(tx, ns, now)
        elif self.db_clock:  # reads still need the database's time (no row is created)
            now = self.db_now(tx, now)
            stats = _Stats(0, 0, int(now // DAY), 0)
            base = stats.copy()
        else:
            # Counting from zero is exact for the row's changes; totals only matter to limits.
            lim = self.limits
            limited = lim.max_namespace_bytes or lim.max_keys or lim.writes_per_day
            stats = (self._peek_namespace(tx, ns, now) if limited and mutating
                     else _Stats(0, 0, int(now // DAY), 0))
            base = stats.copy()
        if not mutating:
            idempotency_key = None  # a read changes nothing to replay: no record (issue 13)
        kept = 0
        if idempotency_key is not None:
            found = tx.one(*idempotency_query(ns, idempotency_key))
            kept = int(found[2]) if found is not None else 0
            done = found if found is not None and found[1] is not None else None
            if done is not None and (done[0] or "").split(" ", 1)[0] != fingerprint:
                raise InvalidArgument(
                    f"botwire: Idempotency-Key {idempotency_key!r} was already used in namespace "
                    f"{ns!r} for a different request; use a new key for every new request.",
                    namespace=ns,
                )
            if done is not None:
                replay: list[dict[str, Any]] = decode(done[1])
                return replay
        ctx = _Ctx(self, tx, ns, now, stats)
        results: list[dict[str, Any]] = []
        for op in ops:
            if atomic:
                results.append(ctx.apply(op))
                continue
            saved = stats.copy()
            had_version = ctx.has_version
            tx.run("SAVEPOINT bw_op")
            try:
                results.append(ctx.apply(op))
            except BotWireError as exc:
                tx.run("ROLLBACK TO SAVEPOINT bw_op")
                ctx.stats = stats = saved
                if not had_version:
                    # The rollback may have undone the version's allocation (SQLite's counter is
                    # a row): the next op takes a fresh one rather than reuse an unrecorded one.
                    ctx.forget_version()
                results.append(exc.to_payload())
            tx.run("RELEASE SAVEPOINT bw_op")
        if idempotency_key is not None:
            self._record(ctx, ops, idempotency_key, fingerprint, dumps(results), kept)
        if base is None:
            self.save_namespace(tx, ns, ctx.stats)
        else:
            self._add_namespace(tx, ns, ctx.stats, base)
        if ctx.deleted:  # after the save: a relative update of the bytes
            self.forget_key_records(tx, ns, ctx.deleted, idempotency_key)
        return results

    def _record(self, ctx: _Ctx, ops: Sequence[Op], ikey: str, fp: str | None,
                response: str, kept: int) -> None:
        """Keep a mutating request's answer for its retries, bounded per namespace and
        counted in its bytes (issue 13: ``usage().bytes``, ``max_namespace_bytes``).

        The fingerprint column holds ``"<digest> <scope>"``: the one key every op touches, or
        ``*``; a delete of that key (or of the namespace) removes the record with the data, so
        a replay never returns deleted data. At most :data:`MAX_IDEMPOTENCY_RECORDS` records
        (``kept`` were there before this one) and, whenever a large answer
        (> :data:`SMALL_RECORD` bytes) is added, :meth:`idempotency_budget` bytes of
        answers are kept per namespace; the oldest go first (a retry comes seconds after its
        request, not after a thousand others). A record counts its answer's UTF-8 bytes of JSON;
        older records make way for it under the byte limit, and a request whose own answer
        cannot fit is refused (QuotaExceeded, nothing applied). Small records cost no extra
        statement.
        """
        tx, ns, stats = ctx.tx, ctx.ns, ctx.stats
        # Only answers that carry stored values (get, pop, incr) can replay deleted data;
        # versions and flags cannot. The scope is the one key whose values the answer holds,
        # "*" for several, "" for none (no key is empty: a delete matches none), so a retried
        # bulk delete or a transaction beside an unrelated delete still replays.
        keys = {op.key for op in ops if op.kind in _VALUE_KINDS}
        scope = next(iter(keys)) if len(keys) == 1 else ("*" if keys else "")
        tx.run(
            "INSERT INTO bw_idempotency (ns, ikey, fingerprint, created_at, response)"
            " VALUES (?, ?, ?, ?, ?)",
            (ns, ikey, f"{fp or '0' * 64} {scope}", ctx.now, response),
        )
        size_of = _utf8_len(response)  # bytes, like the data's (issue 13: not characters)
        stats.bytes += size_of
        count, size = kept + 1, 0
        budget = self.idempotency_budget()
        if size_of > SMALL_RECORD:
            row = tx.one(
                f"SELECT count(*), coalesce(sum({self.octets}), 0) FROM bw_idempotency"
                " WHERE ns = ?",
                (ns,),
            )
            count, size = (int(row[0]), int(row[1])) if row else (0, 0)
        cap = self.limits.max_namespace_bytes
        if count > MAX_IDEMPOTENCY_RECORDS or size > budget or (cap and stats.bytes > cap):
            self.shed_records(tx, ns, stats, cap, keep=ikey, count=count, size=size)
        if cap and stats.bytes > cap:
            ctx.refuse_bytes(ops[0].key if len(keys) == 1 else "*", "the idempotency record of")

    def shed_records(self, tx: Tx, ns: str, stats: _Stats, cap: int, *, keep: str = "",
                     count: int = 0, size: int = 0) -> None:
        """Drop the namespace's oldest idempotency records (not ``keep``) until at most
        :data:`MAX_IDEMPOTENCY_RECORDS` (``count``), :meth:`idempotency_budget` bytes
        (``size``) and, with ``cap``, ``stats.bytes <= cap`` hold; their bytes are freed."""
        budget = self.idempotency_budget()

        def over() -> bool:
            return (count > MAX_IDEMPOTENCY_RECORDS or size > budget
                    or bool(cap and stats.bytes > cap))

        if not over():
            return
        oldest = tx.all(
            f"SELECT ikey, {self.octets} FROM bw_idempotency WHERE ns = ? AND ikey <> ?"
            " ORDER BY created_at, ikey",
            (ns, keep),
        )
        gone: list[tuple[str, str]] = []
        for old_key, length in oldest:
            if not over():
                break
            gone.append((ns, old_key))
            count, size = count - 1, size - int(length)
            stats.bytes -= int(length)
        if gone:
            tx.many("DELETE FROM bw_idempotency WHERE ns = ? AND ikey = ?", gone)

    def idempotency_budget(self) -> int:
        """Bytes of kept answers per namespace: its byte limit, else a fixed cap."""
        return self.limits.max_namespace_bytes or IDEMPOTENCY_BUDGET

    def forget_key_records(self, tx: Tx, ns: str, keys: set[str], keep: str | None) -> None:
        """Drop the idempotency records that may hold deleted ``keys``' data (not the request's
        own, ``keep``) and free their bytes. Run after the statistics are saved: the update is
        relative and both statements are queued (no round trip on a pipelined backend)."""
        # the scope starts after the 64-digit digest and its space (1-based: character 66)
        marks = ", ".join("?" * (len(keys) + 1))
        where = f"ns = ? AND substr(fingerprint, 66) IN ({marks}) AND ikey <> ?"
        params = (ns, *sorted(keys), "*", keep or "")
        tx.run(
            f"UPDATE bw_namespaces SET bytes = bytes - (SELECT coalesce(sum({self.octets}), 0)"
            f" FROM bw_idempotency WHERE {where}) WHERE ns = ?",
            (*params, ns),
        )
        tx.run(f"DELETE FROM bw_idempotency WHERE {where}", params)

    def _lock_existing(self, tx: Tx, ns: str, now: float) -> tuple[_Stats, float] | None:
        """Like :meth:`lock_namespace_at`, but ``None`` (and no row created) for a namespace
        without statistics: every namespace that ever held a key has them, so reads and no-op
        clears of others must not create rows (a read-only token could fill the table)."""
        if self.db_clock:
            row = tx.one(
                "UPDATE bw_namespaces SET ns = ns WHERE ns = ?"
                f" RETURNING keys, bytes, day, writes, {DB_LOCK_NOW_SQL}",
                (ns, now),
            )
            if row is None:
                return None
            now, row = float(row[4]), row[:4]
        else:
            row = tx.one(
                "UPDATE bw_namespaces SET ns = ns WHERE ns = ? RETURNING keys, bytes, day, writes",
                (ns,),
            )
            if row is None:
                return None
        stats = _Stats(*row)
        today = int(now // DAY)
        if stats.day != today:
            stats.day, stats.writes = today, 0
        return stats, now

    def db_now(self, tx: Tx, offset: float) -> float:
        """The database's time plus ``offset`` (``db_clock`` only): one statement, for the rare
        paths that need "now" without a namespace lock to return it."""
        row = tx.one(f"SELECT {DB_NOW_SQL}", (offset,))
        assert row is not None
        return float(row[0])

    def clear(self, tx: Tx, ns: str, now: float) -> int:
        found = self._lock_existing(tx, ns, now)
        if found is None:
            return 0
        stats, now = found
        row = tx.one(
            "SELECT count(*) FROM bw_entries"
            " WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?)",
            (ns, now),
        )
        if self.defer_rows:
            # long lists (and any with leftovers) are swept later; the rest go now
            long = tx.all(
                "SELECT key, tail FROM bw_entries WHERE ns = ? AND kind = 1 AND (length > ?"
                " OR key IN (SELECT key FROM bw_trash WHERE ns = ?))",
                (ns, self.defer_rows, ns),
            )
            for key, tail in long:
                self.trash(tx, ns, key, int(tail))
            tx.run(
                "DELETE FROM bw_items WHERE ns = ? AND key NOT IN"
                " (SELECT key FROM bw_trash WHERE ns = ?)",
                (ns, ns),
            )
        else:
            tx.run("DELETE FROM bw_items WHERE ns = ?", (ns,))
        tx.run("DELETE FROM bw_entries WHERE ns = ?", (ns,))
        tx.run("DELETE FROM bw_idempotency WHERE ns = ?", (ns,))  # no replay of deleted data
        stats.keys = stats.bytes = 0
        self.save_namespace(tx, ns, stats)
        return int(row[0]) if row else 0

    def usage(self, tx: Tx, ns: str, now: float) -> Usage:
        found = self._lock_existing(tx, ns, now)
        if found is None:  # reads never create rows (issue 13)
            today = int(self.db_now(tx, now) // DAY) if self.db_clock else int(now // DAY)
            return Usage(ns, 0, 0, 0, (today + 1) * DAY, self.limits)
        stats, now = found
        self.purge_namespace(tx, ns, now, stats)
        self.save_namespace(tx, ns, stats)
        return Usage(ns, stats.keys, stats.bytes, stats.writes, (stats.day + 1) * DAY, self.limits)

    def purge_namespace(self, tx: Tx, ns: str, now: float, stats: _Stats) -> int:
        """Delete the namespace's expired entries; the caller holds the namespace lock."""
        gone = tx.all(
            "DELETE FROM bw_entries WHERE ns = ? AND expires_at IS NOT NULL AND expires_at <= ?"
            " RETURNING key, kind, bytes, length, tail",
            (ns, now),
        )
        for key, kind, _, length, tail in gone:
            if kind == LIST:
                self.drop_items(tx, ns, key, int(length), int(tail))
        stats.keys -= len(gone)
        stats.bytes -= sum(int(r[2]) for r in gone)
        return len(gone)

    def expired_namespaces(self, tx: Tx, now: float, limit: int = 100) -> list[str]:
        rows = tx.all(
            "SELECT DISTINCT ns FROM bw_entries WHERE expires_at IS NOT NULL"
            f" AND expires_at <= {self._now_sql} LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]

    def forget_idempotency(self, tx: Tx, now: float, limit: int = 100) -> int:
        """Forget records older than :data:`IDEMPOTENCY_SECONDS` in up to ``limit``
        namespaces, freeing their bytes; return how many namespaces were done (call again
        while it returns ``limit``)."""
        rows = tx.all(
            "SELECT DISTINCT ns FROM bw_idempotency"
            f" WHERE created_at < {self._now_sql} - ? ORDER BY ns LIMIT ?",
            (now, IDEMPOTENCY_SECONDS, limit),
        )
        for (ns,) in rows:
            # Namespace lock first, then its records: the order every writer takes them in.
            found = self._lock_existing(tx, ns, now)
            gone = tx.all(
                f"DELETE FROM bw_idempotency WHERE ns = ? AND created_at < {self._now_sql} - ?"
                f" RETURNING {self.octets}",
                (ns, now, IDEMPOTENCY_SECONDS),
            )
            if found is not None:
                stats = found[0]
                stats.bytes -= sum(int(r[0]) for r in gone)
                self.save_namespace(tx, ns, stats)
        return len(rows)

    def trash(self, tx: Tx, ns: str, key: str, below: int) -> None:
        """Mark every list row of ``key`` with ``seq < below`` as garbage for :meth:`sweep`."""
        tx.run(
            "INSERT INTO bw_trash (ns, key, below) VALUES (?, ?, ?) ON CONFLICT (ns, key)"
            " DO UPDATE SET below = CASE WHEN below > excluded.below THEN below"
            " ELSE excluded.below END",
            (ns, key, below),
        )
        self.trashed = True

    def list_floor(self, tx: Tx, ns: str, key: str) -> int:
        """Where a new list of ``key`` starts: above any leftovers of an earlier one."""
        if not self.defer_rows:
            return 0
        row = tx.one("SELECT below FROM bw_trash WHERE ns = ? AND key = ?", (ns, key))
        return int(row[0]) if row is not None else 0

    def drop_items(self, tx: Tx, ns: str, key: str, length: int, tail: int) -> None:
        """Remove a list's rows (the entry is going): at once when few, else left to
        :meth:`sweep` below the list's ``tail``."""
        if self.defer_rows and length > self.defer_rows:
            self.trash(tx, ns, key, tail)
        else:
            tx.run("DELETE FROM bw_items WHERE ns = ? AND key = ?", (ns, key))

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
            "DELETE FROM bw_items WHERE ns = ? AND key = ? AND seq >= ? AND seq < ?"
            " RETURNING seq",
            (ns, key, low[0], upto),
        )
        return len(gone)

    def _not_a_list(self, ns: str, key: str, value: Any, what: str) -> TypeMismatch:
        return TypeMismatch(
            f"botwire: {what} needs a list, but key {key!r} in namespace {ns!r} holds a "
            f"{_json_type(value)}; use set() to replace it or pick another key.",
            namespace=ns,
            key=key,
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", dict: "object"}.get(
        type(value), "list"
    )


class _Ctx:
    """The state of one write transaction on one namespace."""

    def __init__(self, engine: Engine, tx: Tx, ns: str, now: float, stats: _Stats) -> None:
        self.engine = engine
        self.limits = engine.limits
        self.tx = tx
        self.ns = ns
        self.now = now
        self.stats = stats
        self._version: int | None = None
        self.deleted: set[str] = set()

    @property
    def has_version(self) -> bool:
        return self._version is not None

    def forget_version(self) -> None:
        self._version = None

    @property
    def version(self) -> int:
        # One version per transaction, allocated at its first mutation (like an etcd revision).
        if self._version is None:
            self._version = self.engine._next_version(self.tx)
        return self._version

    def apply(self, op: Op) -> dict[str, Any]:
        handler = getattr(self, "_op_" + op.kind, None)
        if handler is None:
            raise InvalidArgument(
                f"botwire: unknown operation {op.kind!r} on key {op.key!r} in namespace "
                f"{self.ns!r}; use get, set, delete, append, incr, pop or check.",
                namespace=self.ns,
                key=op.key,
            )
        if op.kind in ("set", "append", "incr", "pop"):
            self._count_write(op.key)
        before = (self.stats.keys, self.stats.bytes)
        result: dict[str, Any] = handler(op)
        self._check_room(op.key, *before)
        return result

    # -- helpers -----------------------------------------------------------------------------

    def _load(self, key: str) -> _Row | None:
        raw = self.tx.one(
            f"SELECT {_ENTRY_COLS} FROM bw_entries WHERE ns = ? AND key = ?", (self.ns, key)
        )
        if raw is None:
            return None
        row = _Row(*raw)
        if row.expires_at is not None and row.expires_at <= self.now:
            self._remove(key, row)  # expired: gone for good, as if purged already
            return None
        return row

    def _remove(self, key: str, row: _Row) -> None:
        self.tx.run("DELETE FROM bw_entries WHERE ns = ? AND key = ?", (self.ns, key))
        if row.kind == LIST:
            self.engine.drop_items(self.tx, self.ns, key, row.length, row.tail)
        self.stats.keys -= 1
        self.stats.bytes -= row.bytes

    def _store(self, key: str, row: _Row | None, new: _Row) -> None:
        if row is None:
            self.stats.keys += 1
            self.stats.bytes += new.bytes
        else:
            self.stats.bytes += new.bytes - row.bytes
        self.tx.run(
            f"INSERT INTO bw_entries (ns, key, {_ENTRY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (ns, key) DO UPDATE SET kind = excluded.kind, value = excluded.value,"
            " version = excluded.version, updated_at = excluded.updated_at,"
            " expires_at = excluded.expires_at, bytes = excluded.bytes,"
            " length = excluded.length, head = excluded.head, tail = excluded.tail",
            (
                self.ns,
                key,
                new.kind,
                new.value,
                new.version,
                new.created_at,
                new.updated_at,
                new.expires_at,
                new.bytes,
                new.length,
                new.head,
                new.tail,
            ),
        )

    def _expiry(self, key: str, ttl: float | None, row: _Row | None, keep: bool) -> float | None:
        if ttl is None:
            return row.expires_at if (keep and row is not None) else None
        if not (isinstance(ttl, (int, float)) and not isinstance(ttl, bool)) or not (
            0 < ttl < 1e10 and math.isfinite(ttl)
        ):
            raise InvalidArgument(
                f"botwire: ttl={ttl!r} for key {key!r} in namespace {self.ns!r}; ttl is a "
                "number of seconds greater than 0 (omit it for no expiry).",
                namespace=self.ns,
                key=key,
            )
        return self.now + ttl

    def _check_size(self, key: str, size: int, what: str = "value") -> None:
        limit = self.limits.max_value_bytes
        if limit and size > limit:
            raise ValueTooLarge(
                f"botwire: the {what} for key {key!r} in namespace {self.ns!r} is {size} bytes "
                f"of JSON; the limit is {limit}. Split it over several keys, or use append() "
                "for growing lists.",
                namespace=self.ns,
                key=key,
                size=size,
                limit=limit,
            )

    def _count_write(self, key: str) -> None:
        limit = self.limits.writes_per_day
        if limit and self.stats.writes >= limit:
            retry = (self.stats.day + 1) * DAY - self.now
            raise QuotaExceeded(
                f"botwire: namespace {self.ns!r} has used its {limit} writes for today (UTC); "
                f"writes resume in {retry:.0f} s at midnight UTC. Reads still work.",
                namespace=self.ns,
                key=key,
                retry_after=math.ceil(retry),
                quota="writes_per_day",
                limit=limit,
            )
        self.stats.writes += 1

    def _check_room(self, key: str, keys_before: int, bytes_before: int) -> None:
        lim, st = self.limits, self.stats
        over_bytes = lim.max_namespace_bytes and st.bytes > lim.max_namespace_bytes
        over_keys = lim.max_keys and st.keys > lim.max_keys
        if not ((over_bytes and st.bytes > bytes_before) or (over_keys and st.keys > keys_before)):
            return
        self.engine.purge_namespace(self.tx, self.ns, self.now, st)  # expired space is free
        if over_bytes and st.bytes > lim.max_namespace_bytes:
            # idempotency records only serve retries: the oldest make way for data
            self.engine.shed_records(self.tx, self.ns, st, lim.max_namespace_bytes)
        if lim.max_namespace_bytes and st.bytes > lim.max_namespace_bytes:
            self.refuse_bytes(key, "key")
        if lim.max_keys and st.keys > lim.max_keys:
            raise QuotaExceeded(
                f"botwire: namespace {self.ns!r} already holds its limit of {lim.max_keys} keys, "
                f"so key {key!r} cannot be added; delete keys you no longer need.",
                namespace=self.ns,
                key=key,
                retry_after=None,
                quota="max_keys",
                limit=lim.max_keys,
            )

    def refuse_bytes(self, key: str, what: str) -> None:
        limit = self.limits.max_namespace_bytes
        raise QuotaExceeded(
            f"botwire: namespace {self.ns!r} would hold {self.stats.bytes} bytes (data and "
            f"idempotency records) after writing {what} {key!r}; its limit is {limit}. Delete "
            "keys you no longer need (or trim lists with max_len) to make room.",
            namespace=self.ns,
            key=key,
            retry_after=None,
            quota="max_namespace_bytes",
            limit=limit,
        )

    def _conflict(self, op: Op, row: _Row | None, wanted: str) -> Conflict:
        current = row.version if row is not None else None
        return Conflict(
            f"botwire: {op.kind} of key {op.key!r} in namespace {self.ns!r} expected {wanted} "
            f"but the current version is {current if current is not None else 'absent'}; "
            "read the entry again and retry (or use update()).",
            namespace=self.ns,
            key=op.key,
            current_version=current,
        )

    def _check_version(self, op: Op, row: _Row | None) -> None:
        if op.if_absent and row is not None:
            raise self._conflict(op, row, "the key to be absent")
        if op.if_version is not None and (row is None or row.version != op.if_version):
            raise self._conflict(op, row, f"version {op.if_version}")

    def _list_of(self, op: Op, row: _Row | None, what: str) -> tuple[int, int, int, int]:
        """(head, tail, length, content bytes) of the list at ``op.key``, converting a JSON array
        stored by ``set`` into list rows once so that later appends do not rewrite it."""
        if row is not None and row.kind == LIST:
            content = row.bytes - _utf8_len(op.key) - 2 - max(row.length - 1, 0)
            return row.head, row.tail, row.length, content
        floor = self.engine.list_floor(self.tx, self.ns, op.key)  # above any leftovers
        if row is None:
            return floor, floor, 0, 0
        value = decode(row.value or "null")
        if not isinstance(value, list):
            raise self.engine._not_a_list(self.ns, op.key, value, what)
        items = [dumps(v) for v in value]
        sizes = [_utf8_len(t) for t in items]
        self.tx.many(
            "INSERT INTO bw_items (ns, key, seq, value, bytes) VALUES (?, ?, ?, ?, ?)",
            [(self.ns, op.key, floor + i, t, s)
             for i, (t, s) in enumerate(zip(items, sizes, strict=True))],
        )
        return floor, floor + len(items), len(items), sum(sizes)

    # -- operations --------------------------------------------------------------------------

    def _op_get(self, op: Op) -> dict[str, Any]:
        return self.engine.read_result(self.tx, self.ns, op, self.now, in_tx=True)

    def _op_check(self, op: Op) -> dict[str, Any]:
        row = self._load(op.key)
        current = row.version if row is not None else None
        if current != op.version:
            raise self._conflict(
                op, row, "the key to be absent" if op.version is None else f"version {op.version}"
            )
        return {"ok": True}

    def _op_set(self, op: Op) -> dict[str, Any]:
        if op.value is None:
            raise InvalidArgument(
                f"botwire: set of key {op.key!r} in namespace {self.ns!r} has no value.",
                namespace=self.ns,
                key=op.key,
            )
        row = self._load(op.key)
        self._check_version(op, row)
        size = _utf8_len(op.value)
        self._check_size(op.key, size)
        expires = self._expiry(op.key, op.ttl, row, keep=False)
        if row is not None and row.kind == LIST:
            self.engine.drop_items(self.tx, self.ns, op.key, row.length, row.tail)
        created = row.created_at if row is not None else self.now
        new = _Row(
            VALUE,
            op.value,
            self.version,
            created,
            self.now,
            expires,
            _utf8_len(op.key) + size,
            0,
            0,
            0,
        )
        self._store(op.key, row, new)
        return {"version": new.version}

    def _op_delete(self, op: Op) -> dict[str, Any]:
        row = self._load(op.key)
        if op.if_version is not None and (row is None or row.version != op.if_version):
            raise self._conflict(op, row, f"version {op.if_version}")
        if row is None:
            return {"deleted": False}
        self._remove(op.key, row)
        self.deleted.add(op.key)  # its records go at the end of the request
        return {"deleted": True}

    def _op_append(self, op: Op) -> dict[str, Any]:
        if op.max_len is not None and (
            not isinstance(op.max_len, int) or isinstance(op.max_len, bool) or op.max_len < 1
        ):
            raise InvalidArgument(
                f"botwire: max_len={op.max_len!r} for key {op.key!r} in namespace {self.ns!r}; "
                "use a whole number >= 1 (or omit it for an unbounded list).",
                namespace=self.ns,
                key=op.key,
            )
        engine = self.engine
        if engine.max_append_items and len(op.items) > engine.max_append_items:
            raise self._list_limit(op, f"one append adds {len(op.items)} items",
                                   "max_append_items", engine.max_append_items,
                                   "append them in several calls")
        row = self._load(op.key)
        self._check_version(op, row)
        sizes = [_utf8_len(t) for t in op.items]
        for size in sizes:
            self._check_size(op.key, size, "list item")
        expires = self._expiry(op.key, op.ttl, row, keep=True)
        self._check_list_growth(op, row, len(op.items), sum(sizes))
        head, tail, length, content = self._list_of(op, row, "append")
        if op.items:
            self.tx.many(
                "INSERT INTO bw_items (ns, key, seq, value, bytes) VALUES (?, ?, ?, ?, ?)",
                [
                    (self.ns, op.key, tail + i, t, s)
                    for i, (t, s) in enumerate(zip(op.items, sizes, strict=True))
                ],
            )
        tail += len(op.items)
        length += len(op.items)
        content += sum(sizes)
        if op.max_len is not None and length > op.max_len:
            content = self._trim(op.key, head, tail, op.max_len, content)
            head = tail - op.max_len
            length = op.max_len
        created = row.created_at if row is not None else self.now
        new = _Row(
            LIST,
            None,
            self.version,
            created,
            self.now,
            expires,
            _list_bytes(_utf8_len(op.key), content, length),
            length,
            head,
            tail,
        )
        engine = self.engine
        grew = row is None or new.bytes > row.bytes or length > row.length
        if grew and engine.max_list_length and length > engine.max_list_length:
            raise self._list_limit(op, f"the list would hold {length} items after this append",
                                   "max_list_length", engine.max_list_length,
                                   "delete it or start a new key")
        if grew and engine.max_list_bytes and new.bytes > engine.max_list_bytes:
            raise self._list_limit(
                op, f"the list would hold {new.bytes} bytes of JSON after this append",
                "max_list_bytes", engine.max_list_bytes, "delete it or start a new key")
        self._store(op.key, row, new)
        return {"version": new.version, "length": length}

    def _trim(self, key: str, head: int, tail: int, keep: int, content: int) -> int:
        """Drop the list's items below ``tail - keep`` (``[head, tail)`` are live); return the
        content bytes left. A long trim (``Engine.defer_rows``) only moves the head: reads
        skip the rows below it and ``Engine.sweep`` removes them later in chunks; the bytes
        are summed over whichever side is shorter, the trimmed or the kept rows."""
        new_head = tail - keep
        trimmed = new_head - head
        engine = self.engine
        if not (engine.defer_rows and trimmed > engine.defer_rows):
            gone = self.tx.all(
                "DELETE FROM bw_items WHERE ns = ? AND key = ? AND seq >= ? AND seq < ?"
                " RETURNING bytes",
                (self.ns, key, head, new_head),
            )
            return content - sum(int(r[0]) for r in gone)
        lo, hi = (new_head, tail) if keep < trimmed else (head, new_head)
        row = self.tx.one(
            "SELECT coalesce(sum(bytes), 0) FROM bw_items"
            " WHERE ns = ? AND key = ? AND seq >= ? AND seq < ?",
            (self.ns, key, lo, hi),
        )
        summed = int(row[0]) if row is not None else 0
        engine.trash(self.tx, self.ns, key, new_head)
        return summed if keep < trimmed else content - summed

    def _list_limit(self, op: Op, what: str, quota: str, limit: int, fix: str
                    ) -> ValueTooLarge:
        return ValueTooLarge(
            f"botwire: {what} to list {op.key!r} in namespace {self.ns!r}; this server's "
            f"{quota} is {limit}. Use max_len= to keep the list bounded, or {fix}.",
            namespace=self.ns,
            key=op.key,
            quota=quota,
            limit=limit,
        )

    def _check_list_growth(self, op: Op, row: _Row | None, added: int, added_bytes: int
                           ) -> None:
        """Refuse, before any row is written, a list that would outgrow the list limits once
        ``max_len`` has trimmed it (every read or trim of it is then bounded too)."""
        engine = self.engine
        if not (engine.max_list_length or engine.max_list_bytes):
            return
        if row is None:
            length, size = 0, _utf8_len(op.key) + 2
        elif row.kind == LIST:
            length, size = row.length, row.bytes
        else:
            return  # a JSON array from set(): within max_value_bytes, checked again below
        new_length = length + added
        kept = min(new_length, op.max_len) if op.max_len is not None else new_length
        if engine.max_list_length and kept > engine.max_list_length:
            raise self._list_limit(op, f"the list would hold {kept} items after this append",
                                   "max_list_length", engine.max_list_length,
                                   "delete it or start a new key")
        # bytes: exact without max_len; with max_len the trimmed size is known only after
        # trimming, so the untrimmed size is checked only when nothing is trimmed
        if engine.max_list_bytes and kept == new_length:
            new_size = size + added_bytes + added - (1 if length == 0 and added else 0)
            if new_size > engine.max_list_bytes:
                raise self._list_limit(
                    op, f"the list would hold {new_size} bytes of JSON after this append",
                    "max_list_bytes", engine.max_list_bytes, "delete it or start a new key")

    def _op_incr(self, op: Op) -> dict[str, Any]:
        by = op.by
        if isinstance(by, bool) or not isinstance(by, (int, float)) or (
            isinstance(by, float) and not math.isfinite(by)  # isfinite(10**400) overflows
        ):
            raise InvalidArgument(
                f"botwire: incr of key {op.key!r} in namespace {self.ns!r} by {by!r}; "
                "the amount must be a finite int or float.",
                namespace=self.ns,
                key=op.key,
            )
        row = self._load(op.key)
        self._check_version(op, row)
        current: Any = 0
        if row is not None:
            current = decode(row.value) if row.kind == VALUE else []
            if isinstance(current, bool) or not isinstance(current, (int, float)):
                raise TypeMismatch(
                    f"botwire: incr needs a number, but key {op.key!r} in namespace {self.ns!r} "
                    f"holds a {_json_type(current)}; set() it to a number first or use another "
                    "key.",
                    namespace=self.ns,
                    key=op.key,
                )
        try:
            # float + huge int raises OverflowError; an int result past Python's 4300-digit
            # str limit raises ValueError in dumps: both are the client's numbers, a 400.
            value = current + by
            if isinstance(value, float) and not math.isfinite(value):
                raise OverflowError(value)
            text = dumps(value)
        except (OverflowError, ValueError):
            raise NotSerializable(
                f"botwire: incr of key {op.key!r} in namespace {self.ns!r} leaves the range "
                "of numbers this store holds (finite floats, integers of at most 4300 digits);"
                " use a smaller amount or set() the key to a new value.",
                namespace=self.ns,
                key=op.key,
            ) from None
        created = row.created_at if row is not None else self.now
        expires = row.expires_at if row is not None else None
        new = _Row(
            VALUE,
            text,
            self.version,
            created,
            self.now,
            expires,
            _utf8_len(op.key) + _utf8_len(text),
            0,
            0,
            0,
        )
        self._store(op.key, row, new)
        return {"version": new.version, "value": value}

    def _op_pop(self, op: Op) -> dict[str, Any]:
        row = self._load(op.key)
        self._check_version(op, row)
        if row is None:
            return {"found": False, "value": None}
        if row.kind == VALUE:
            array = decode(row.value or "null")
            if not isinstance(array, list):
                raise self.engine._not_a_list(self.ns, op.key, array, "pop")
            if not array:
                return {"found": False, "value": None}
            item = array.pop()
            text = dumps(array)
            new = _Row(
                VALUE,
                text,
                self.version,
                row.created_at,
                self.now,
                row.expires_at,
                _utf8_len(op.key) + _utf8_len(text),
                0,
                0,
                0,
            )
            self._store(op.key, row, new)
            return {"found": True, "value": item, "version": new.version}
        if row.length == 0:
            return {"found": False, "value": None}
        gone = self.tx.one(
            "DELETE FROM bw_items WHERE ns = ? AND key = ? AND seq = ? RETURNING value, bytes",
            (self.ns, op.key, row.tail - 1),
        )
        assert gone is not None, "list rows out of step with their entry"
        _, _, length, content = self._list_of(op, row, "pop")
        length -= 1
        content -= gone[1]
        new = _Row(
            LIST,
            None,
            self.version,
            row.created_at,
            self.now,
            row.expires_at,
            _list_bytes(_utf8_len(op.key), content, length),
            length,
            row.head,
            row.tail - 1,
        )
        self._store(op.key, row, new)
        return {"found": True, "value": decode(gone[0]), "version": new.version}
