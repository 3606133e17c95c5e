"""What every part of the SQL engine shares: the transaction a backend supplies (:class:`Tx`,
with its hooks), the records of a row and of a namespace's statistics, the engine's
configuration and its namespace lock (:class:`EngineBase`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .._errors import InvalidArgument, TypeMismatch
from .._types import Limits, Op, Policy
from ._sqlplan import Plan, drive
from ._sqlrows import ListRows
from ._sqltext import (
    DAY,
    DB_LOCK_NOW_SQL,
    DB_NOW_SQL,
    HEAD_FILTER,
    LOCK_DB_CLOCK_SQL,
    LOCK_SQL,
    RELEASE_SQL,
    ROLLBACK_SQL,
    SAVE_SQL,
    SAVE_WRITTEN_SQL,
    SAVEPOINT_SQL,
    SQLITE_OCTETS,
    TAIL_FILTER,
    read_many_sql,
    read_many_within_sql,
    read_sql,
)

IDEMPOTENCY_SECONDS = 86400.0
MAX_BATCH_OPS = 1000  # ops per transaction, like Deno KV's 1000 mutations per commit
#: Idempotency records kept per namespace (oldest dropped first) ...
MAX_IDEMPOTENCY_RECORDS = 1000
#: ... and UTF-8 bytes of their answers, when the namespace has no byte limit ...
IDEMPOTENCY_BUDGET = 16 * 1024 * 1024
#: ... checked when an answer over this many bytes is kept (smaller ones total at most
#: MAX_IDEMPOTENCY_RECORDS * SMALL_RECORD = 4 MiB per namespace).
SMALL_RECORD = 4096

Row = tuple[Any, ...]
T = TypeVar("T")


class Tx(Protocol):
    """A transaction begun by the backend; SQL uses ``?`` placeholders.

    Besides the four ways to run a statement, the engine calls hooks at the points a backend
    may care about, instead of the backend recognising the engine's SQL text: :class:`TxHooks`
    gives their defaults (plain statements)."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def lock(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The namespace lock, the first statement of a write (like :meth:`one`)."""
        ...

    def savepoint(self) -> None:
        """Before one op of a non-atomic batch."""
        ...

    def rollback_savepoint(self) -> None:
        """After that op failed: what it did is undone."""
        ...

    def release_savepoint(self) -> None:
        """After that op, failed or not."""
        ...


class TxHooks:
    """The default hooks of :class:`Tx`, as plain statements; a backend's Tx derives from it
    and overrides what it needs (PostgreSQL's pipeline prefetches behind :meth:`lock`;
    SQLite drops its version block in :meth:`rollback_savepoint`)."""

    __slots__ = ()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def lock(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        return self.one(sql, params)

    def savepoint(self) -> None:
        self.run(SAVEPOINT_SQL)

    def rollback_savepoint(self) -> None:
        self.run(ROLLBACK_SQL)

    def release_savepoint(self) -> None:
        self.run(RELEASE_SQL)


@dataclass(slots=True, kw_only=True)
class EntryRow:
    """One ``bw_entries`` row (``ENTRY_COLS``), built with keywords."""

    kind: int
    value: str | None
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None
    bytes: int
    length: int = 0
    head: int = 0
    tail: int = 0

    @classmethod
    def from_db(cls, raw: Row) -> EntryRow:
        kind, value, version, created, updated, expires, size, length, head, tail = raw
        return cls(
            kind=kind,
            value=value,
            version=version,
            created_at=created,
            updated_at=updated,
            expires_at=expires,
            bytes=size,
            length=length,
            head=head,
            tail=tail,
        )

    def created(self, at: float) -> EntryRow:
        """This row with ``created_at`` set to ``at`` (``dataclasses.replace`` without its
        field walk: this runs once per key a write stores)."""
        return EntryRow(
            kind=self.kind,
            value=self.value,
            version=self.version,
            created_at=at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
            bytes=self.bytes,
            length=self.length,
            head=self.head,
            tail=self.tail,
        )


@dataclass(slots=True)
class Stats:
    """A namespace's ``bw_namespaces`` row: its totals and today's writes, and its own
    retention fields read with them (``p_ttl``, ``p_max_len``: NULL follows the default)."""

    keys: int
    bytes: int
    day: int
    writes: int
    records: int | None = None  # idempotency records kept; None: unknown (count them)
    ttl: float | None = None
    max_len: int | None = None
    max_idle: float | None = None  # read by _lock_existing only (usage)

    def copy(self) -> Stats:
        return Stats(
            self.keys,
            self.bytes,
            self.day,
            self.writes,
            self.records,
            self.ttl,
            self.max_len,
            self.max_idle,
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

    # the fields of each op, in order (``@record`` gives Op its __slots__)
    fields: tuple[str, ...] = Op.__slots__  # type: ignore[attr-defined]
    text = repr((atomic, [tuple(getattr(op, f) for f in fields) for op in ops]))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def list_bytes(key_bytes: int, content: int, length: int) -> int:
    """Bytes of a list as JSON (``[a,b]``) plus its key, whatever its layout."""
    return key_bytes + 2 + content + max(length - 1, 0)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", dict: "object"}.get(
        type(value), "list"
    )


def not_a_list(ns: str, key: str, value: Any, what: str) -> TypeMismatch:
    return TypeMismatch(
        f"botwire: {what} needs a list, but key {key!r} in namespace {ns!r} holds a "
        f"{json_type(value)}; use set() to replace it or pick another key.",
        namespace=ns,
        key=key,
    )


#: What :meth:`EngineBase._lock_existing` returns: the statistics and the namespace's policy.
_EXISTING = "keys, bytes, day, writes, records, p_ttl, p_max_len, p_max_idle"


class EngineBase:
    """The engine's configuration and its namespace statistics (lock, read, save)."""

    def __init__(
        self,
        *,
        limits: Limits,
        clock: Callable[[], float],
        next_version: Callable[[Tx], int],
        lock_first: bool = True,
        db_clock: bool = False,
        octets: str = SQLITE_OCTETS,
        version_sql: str | None = None,
        hashed_items: bool = False,
    ) -> None:
        """``lock_first=False`` is for a backend whose write transactions already exclude each
        other (SQLite's ``BEGIN IMMEDIATE``): the statistics row then needs no lock, so a write
        reads it only when a limit needs its totals and adds its changes in one upsert at the
        end, one statement fewer (two without limits) than locking it first.

        ``db_clock=True`` (PostgreSQL) takes "now" from the database in the statements that
        need it, not from ``clock``: ``clock`` then returns an offset in seconds added to the
        database's time (0.0, or a testing clock's), and every ``now`` passed to a method that
        runs outside a write transaction is that offset. Inside a write, the time returned with
        the namespace lock is used (no extra statement). Requires ``lock_first``.

        ``version_sql`` (PostgreSQL: ``nextval('bw_version')``): an expression that allocates a
        version, evaluated in the namespace lock's ``RETURNING`` once the lock is granted, so a
        write's version follows its namespace's commit order without a statement of its own;
        without it the first mutation asks ``next_version``.

        ``hashed_items`` (PostgreSQL, schema 7): a list's items are found by
        :func:`~botwire.store._sqltext.list_hash` and ``seq`` (the index ``bw_items_list``),
        in every statement that reads or removes them."""
        self.limits = limits
        self.clock = clock
        #: SQL for the UTF-8 bytes of a kept answer (SQLite before 3.43 has no octet_length)
        self.octets = octets
        self._next_version = next_version
        self._lock_first = lock_first or db_clock
        self.db_clock = db_clock
        extra = f", {version_sql}" if version_sql else ""
        self._lock_sql = (LOCK_DB_CLOCK_SQL if db_clock else LOCK_SQL) + extra
        self._lock_version = bool(version_sql)
        # The same columns, read from a row this transaction already holds (``plan_lock``).
        now_column = f", {DB_LOCK_NOW_SQL}" if db_clock else ""
        self._held_sql = (
            f"SELECT keys, bytes, day, writes, records, p_ttl, p_max_len{now_column}{extra}"
            " FROM bw_namespaces WHERE ns = ?"
        )
        now_sql = DB_NOW_SQL if db_clock else "?"
        self._now_sql = now_sql
        h = hashed_items
        self._read_sqls = (read_sql(HEAD_FILTER, now_sql, h), read_sql(TAIL_FILTER, now_sql, h))
        # inside a write transaction "now" is the transaction's (bound, not the database's)
        self._tx_read_sqls = (read_sql(HEAD_FILTER, "?", h), read_sql(TAIL_FILTER, "?", h))
        self._read_many_sql = read_many_sql(now_sql, h)
        self._read_many_within_sql = read_many_within_sql(now_sql, h)
        # List limits (0 = unlimited), checked in the write transaction; a server sets them so
        # that no request has to read, write or trim an unbounded number of rows (issue 13).
        self.max_append_items = 0
        self.max_list_length = 0
        self.max_list_bytes = 0
        #: The store-wide retention policy (the server's --default-ttl, --default-max-list-len,
        #: --max-idle); a namespace's own fields (bw_namespaces.p_*) override it.
        self.policy = Policy()
        #: Where a list's rows go when they leave it (a backend hook): at once by default;
        #: SQLite sets a :class:`~botwire.store._sqlrows.DeferredRows`.
        self.rows: ListRows = ListRows(hashed=hashed_items)

    def next_version(self, tx: Tx) -> int:
        """A new version for the transaction (the backend's allocator)."""
        return self._next_version(tx)

    def run_plan(self, tx: Tx, plan: Plan[T]) -> T:
        """Run a plan (``_sqlplan``) on ``tx`` synchronously."""
        return drive(tx, plan, self._next_version)

    def lock_namespace(self, tx: Tx, ns: str, now: float) -> Stats:
        """Take the namespace's write lock (its statistics row) and return the statistics."""
        return self.lock_namespace_at(tx, ns, now)[0]

    def lock_namespace_at(self, tx: Tx, ns: str, now: float) -> tuple[Stats, float]:
        """:meth:`plan_lock` run on ``tx``: the statistics and the transaction's time."""
        stats, at, _ = drive(tx, self.plan_lock(ns, now))
        return stats, at

    def plan_lock(
        self, ns: str, now: float, held: bool = False
    ) -> Plan[tuple[Stats, float, int | None]]:
        """Take the namespace's write lock (its statistics row): the statistics, the
        transaction's time (``now`` itself or with ``db_clock`` the database's time once the
        lock is granted, same statement) and, with a ``version_sql``, the transaction's version
        (allocated by the same statement; else ``None``: the first mutation allocates it).

        ``held``: this transaction already holds the lock (an earlier write of a group
        committed into it, ``_pg_group``), so the row exists and is locked: it is only read,
        which writes no new row version (the upsert's ``DO UPDATE`` writes one, and its WAL)."""
        if held:
            params: tuple[Any, ...] = (now, ns) if self.db_clock else (ns,)
            row = yield ("lock", self._held_sql, params)
        else:
            params = (ns, now, now) if self.db_clock else (ns, int(now // DAY))
            row = yield ("lock", self._lock_sql, params)
        assert row is not None
        at = 7
        if self.db_clock:
            now, at = float(row[7]), 8
        version = int(row[at]) if self._lock_version else None
        return _today(Stats(*row[:7]), now), now, version

    def save_namespace(self, tx: Tx, ns: str, stats: Stats, written: float | None = None) -> None:
        """:meth:`plan_save` run on ``tx``."""
        drive(tx, self.plan_save(ns, stats, written))

    def plan_save(self, ns: str, stats: Stats, written: float | None = None) -> Plan[None]:
        """Store the statistics; ``written``: the time of a write (the namespace's idle age
        restarts), ``None`` for housekeeping and reads."""
        if written is None:
            yield (
                "run",
                SAVE_SQL,
                (stats.keys, stats.bytes, stats.day, stats.writes, stats.records, ns),
            )
            return
        yield (
            "run",
            SAVE_WRITTEN_SQL,
            (stats.keys, stats.bytes, stats.day, stats.writes, stats.records, written, ns),
        )

    def _peek_namespace(self, tx: Tx, ns: str, now: float) -> Stats:
        """:meth:`plan_peek` run on ``tx``."""
        return drive(tx, self.plan_peek(ns, now))

    def plan_peek(self, ns: str, now: float) -> Plan[Stats]:
        """The statistics and policy fields without locking them (``lock_first=False``);
        zero and none when absent."""
        row = yield (
            "one",
            "SELECT keys, bytes, day, writes, records, p_ttl, p_max_len FROM bw_namespaces"
            " WHERE ns = ?",
            (ns,),
        )
        # no row: no records either (a namespace's row is never deleted, only zeroed)
        fresh = Stats(0, 0, int(now // DAY), 0, records=0)
        return _today(Stats(*row) if row is not None else fresh, now)

    def plan_add(
        self, ns: str, stats: Stats, base: Stats, written: float | None = None
    ) -> Plan[None]:
        """Add ``stats - base`` to the statistics row (created if absent) in one statement; a
        new UTC day restarts the write count, as :meth:`plan_lock` does. ``written``: as
        :meth:`plan_save`. PostgreSQL runs it too, for reads that drop expired entries (its
        columns are qualified: PostgreSQL refuses the bare names as ambiguous)."""
        keys, size = stats.keys - base.keys, stats.bytes - base.bytes
        writes = stats.writes - base.writes
        if not (keys or size or writes or stats.records != base.records):
            return
        # ``records`` is absolute: only a backend whose writes exclude each other adds
        # (``lock_first=False``), so the count it read is still the count
        yield (
            "run",
            "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes, written_at, records)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (ns) DO UPDATE SET keys = bw_namespaces.keys + excluded.keys,"
            " bytes = bw_namespaces.bytes + excluded.bytes,"
            " writes = CASE WHEN bw_namespaces.day = excluded.day"
            " THEN bw_namespaces.writes + excluded.writes ELSE excluded.writes END,"
            " day = excluded.day,"
            " written_at = coalesce(excluded.written_at, bw_namespaces.written_at),"
            " records = excluded.records",
            (ns, keys, size, stats.day, writes, written, stats.records),
        )

    def effective(self, own: float | None, default: float | None) -> float | None:
        """A policy field in force: the namespace's own (0: none) or else the default."""
        value = own if own is not None else default
        return value or None

    def _lock_existing(self, tx: Tx, ns: str, now: float) -> tuple[Stats, float] | None:
        """Like :meth:`lock_namespace_at`, but ``None`` (and no row created) for a namespace
        without statistics: every namespace that ever held a key has them, so reads and no-op
        clears of others must not create rows (a read-only token could fill the table)."""
        if self.db_clock:
            row = tx.one(
                "UPDATE bw_namespaces SET ns = ns WHERE ns = ?"
                f" RETURNING {_EXISTING}, {DB_LOCK_NOW_SQL}",
                (ns, now),
            )
            if row is None:
                return None
            now, row = float(row[8]), row[:8]
        else:
            row = tx.one(
                f"UPDATE bw_namespaces SET ns = ns WHERE ns = ? RETURNING {_EXISTING}", (ns,)
            )
            if row is None:
                return None
        return _today(Stats(*row), now), now

    def db_now(self, tx: Tx, offset: float) -> float:
        """:meth:`plan_db_now` run on ``tx``."""
        return drive(tx, self.plan_db_now(offset))

    def plan_db_now(self, offset: float) -> Plan[float]:
        """The database's time plus ``offset`` (``db_clock`` only): one statement, for the rare
        paths that need "now" without a namespace lock to return it."""
        row = yield ("one", f"SELECT {DB_NOW_SQL}", (offset,))
        assert row is not None
        return float(row[0])

    def _not_a_list(self, ns: str, key: str, value: Any, what: str) -> TypeMismatch:
        return not_a_list(ns, key, value, what)


def _today(stats: Stats, now: float) -> Stats:
    """``stats`` with the write count restarted when ``now`` is a new UTC day."""
    today = int(now // DAY)
    if stats.day != today:
        stats.day, stats.writes = today, 0
    return stats
