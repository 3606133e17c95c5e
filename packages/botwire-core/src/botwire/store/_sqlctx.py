"""The state of one write transaction on one namespace (:class:`Ctx`), and the checks and row
changes the operations (``_sqlops``) share: load, store and remove an entry, limits, quotas,
version conditions, list layout and trimming; what the applied calls of a group transaction
leave known to the next (:class:`Carry`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._codec import decode, dumps
from .._common import RESERVED_PREFIX, _check_ttl
from .._errors import Conflict, InvalidArgument, QuotaExceeded, ValueTooLarge
from .._types import Op
from ._sqlbase import EntryRow, Stats, utf8_len
from ._sqlops import OPS, WRITES
from ._sqlplan import VERSION, Plan
from ._sqltext import DAY, INSERT_ITEM_SQL, LIST, STORE_SQL, load_query

if TYPE_CHECKING:
    from ._sql import Engine


@dataclass(slots=True)
class OldestRecords:
    """The namespace's oldest idempotency records, read ahead with a group's lock (``ahead``
    of them: one per keyed call), so that a call over the 1,000 records drops exactly the
    oldest one by its key and knows its bytes (``Engine.plan_apply``): the statistics stay
    exact, with no relative update after them."""

    ahead: int = 0
    #: (ikey, bytes, created_at) oldest first; ``None`` until read
    rows: list[tuple[str, int, float]] | None = None
    #: the keys dropped by the transaction's calls
    dropped: set[str] = field(default_factory=set)
    #: the oldest time of a record the transaction added (any older one is older than it)
    floor: float = math.inf

    def copy(self) -> OldestRecords:
        return OldestRecords(self.ahead, self.rows, set(self.dropped), self.floor)


@dataclass(slots=True)
class Carry:
    """What the calls a group transaction applied so far leave known to the next one
    (``botwire_server.storage._pg_group``), so that it reads nothing it already knows.

    The transaction holds the namespace lock from its first call on, so nobody else changes
    the namespace meanwhile: the statistics are what the last call saved, and an entry a call
    loaded, stored or removed is what that call left. ``stats`` is ``None`` until a call was
    applied, and again for good once one changed what no call tracks: idempotency records shed
    or forgotten with a delete, an op of a non-atomic batch rolled back (a purge of expired
    entries is tracked: it names the keys it deleted)."""

    stats: Stats | None = None
    now: float = 0.0
    #: key -> its row (``None``: absent), as the transaction's own statements left it
    entries: dict[str, EntryRow | None] = field(default_factory=dict)
    records: OldestRecords = field(default_factory=OldestRecords)
    #: whether the namespace keeps its 1,000 idempotency records after the last keyed call
    #: (its next keyed write drops the oldest): the replica's hint for a lone keyed write,
    #: which then reads the oldest record with its lock (``_pg_group.lone_plan``)
    full: bool = False


class Ctx:
    """The state of one write transaction on one namespace."""

    def __init__(
        self,
        engine: Engine,
        ns: str,
        now: float,
        stats: Stats,
        version: int | None = None,
        known: dict[str, EntryRow | None] | None = None,
    ) -> None:
        """``version``: the transaction's, when its lock allocated one (``plan_lock``);
        ``known``: entries the transaction already knows (:class:`Carry`), kept up to date
        by :meth:`load`, :meth:`store` and :meth:`remove` (``None``: read every load)."""
        self.engine = engine
        self.limits = engine.limits
        self.ns = ns
        self.now = now
        self.stats = stats
        self._version = version
        self.deleted: set[str] = set()
        self.known = known
        #: whether ``known`` and ``stats`` still describe the namespace exactly (``Carry``)
        self.carryable = True
        # The retention policy in force (issue 18): the namespace's fields over the store's.
        default = engine.policy
        self.default_ttl = engine.effective(stats.ttl, default.default_ttl)
        max_len = engine.effective(stats.max_len, default.max_list_len)
        self.max_list_len = int(max_len) if max_len else None

    @property
    def has_version(self) -> bool:
        return self._version is not None

    def forget_version(self) -> None:
        self._version = None

    def version(self) -> Plan[int]:
        # One version per transaction, allocated at its first mutation (like an etcd revision).
        if self._version is None:
            self._version = yield VERSION
        return self._version

    def apply(self, op: Op) -> Plan[dict[str, Any]]:
        handler = OPS.get(op.kind)
        if handler is None:
            raise InvalidArgument(
                f"botwire: unknown operation {op.kind!r} on key {op.key!r} in namespace "
                f"{self.ns!r}; use get, set, delete, append, incr, pop or check.",
                namespace=self.ns,
                key=op.key,
            )
        if op.kind in WRITES:
            self.count_write(op.key)
        before = (self.stats.keys, self.stats.bytes)
        result = yield from handler(self, op)
        yield from self.check_room(op.key, *before)
        return result

    # -- rows --------------------------------------------------------------------------------

    def untrack(self) -> None:
        """Something changed rows this context does not track: read them again, and carry
        nothing to the next call of a group."""
        self.carryable = False
        if self.known is not None:
            self.known.clear()

    def load(self, key: str) -> Plan[EntryRow | None]:
        known = self.known
        if known is not None and key in known:
            row = known[key]
        else:
            raw = yield ("one", *load_query(self.ns, key))
            row = None if raw is None else EntryRow.from_db(raw)
            if known is not None:
                known[key] = row
        if row is None:
            return None
        if row.expires_at is not None and row.expires_at <= self.now:
            yield from self.remove(key, row)  # expired: gone for good, as if purged already
            return None
        return row

    def remove(self, key: str, row: EntryRow) -> Plan[None]:
        yield ("run", "DELETE FROM bw_entries WHERE ns = ? AND key = ?", (self.ns, key))
        if self.known is not None:
            self.known[key] = None
        version = yield from self.version()
        yield self.engine.tombstone_request(self.ns, key, version, self.now)  # for watchers
        if row.kind == LIST:
            yield from self.engine.rows.plan_drop(self.ns, key, row.length, row.tail)
        self.stats.keys -= 1
        self.stats.bytes -= row.bytes

    def store(self, key: str, row: EntryRow | None, new: EntryRow) -> Plan[None]:
        if row is None:
            yield self.engine.untomb_request(self.ns, key)  # a key has a row or a tombstone
            self.stats.keys += 1
            self.stats.bytes += new.bytes
        else:
            self.stats.bytes += new.bytes - row.bytes
        if self.known is not None:
            # STORE_SQL's update keeps the stored row's created_at
            self.known[key] = (
                new
                if row is None or new.created_at == row.created_at
                else new.created(row.created_at)
            )
        yield (
            "run",
            STORE_SQL,
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

    # -- checks ------------------------------------------------------------------------------

    def expiry(self, key: str, ttl: float | None, row: EntryRow | None, keep: bool) -> float | None:
        """When a write's entry expires: its ``ttl``, else the policy's default TTL (as if
        passed; :meth:`default_for`), else the row's expiry (``keep``: an append) or none."""
        if ttl is None:
            default = self.default_for(key)
            if default is not None:
                return self.now + default
            return row.expires_at if (keep and row is not None) else None
        _check_ttl(self.ns, key, ttl)  # the client's check: a raw HTTP request skips the client
        return self.now + ttl

    def new_expiry(self, key: str) -> float | None:
        """The expiry of a key created without a ttl (``incr``): the policy's default TTL."""
        default = self.default_for(key)
        return self.now + default if default is not None else None

    def default_for(self, key: str) -> float | None:
        """The TTL a write of ``key`` without one gets: the policy's default, except for the
        reserved keys (``.botwire/``) of queues and leases, whose lives the client sets itself
        (a queue item leaves only by ack: docs/coordination.md, "Retention")."""
        return None if key.startswith(RESERVED_PREFIX) else self.default_ttl

    def max_len(self, op: Op) -> int | None:
        """An append's ``max_len``, lowered to the policy's ``max_list_len``."""
        limit = self.max_list_len
        if limit is not None and (op.max_len is None or op.max_len > limit):
            return limit
        return op.max_len

    def check_size(self, key: str, size: int, what: str = "value") -> None:
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

    def count_write(self, key: str) -> None:
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

    def check_room(self, key: str, keys_before: int, bytes_before: int) -> Plan[None]:
        lim, st = self.limits, self.stats
        over_bytes = lim.max_namespace_bytes and st.bytes > lim.max_namespace_bytes
        over_keys = lim.max_keys and st.keys > lim.max_keys
        if not ((over_bytes and st.bytes > bytes_before) or (over_keys and st.keys > keys_before)):
            return
        gone = yield from self.engine.plan_purge(self.ns, self.now, st)  # expired space is free
        # A row of theirs read before the purge (read ahead with the lock) is stale now: they
        # are absent until written again.
        if self.known is None:
            self.known = {}
        self.known.update(dict.fromkeys(gone))
        if over_bytes and st.bytes > lim.max_namespace_bytes:
            # idempotency records only serve retries: the oldest make way for data
            self.carryable = False  # a later call's record read ahead may be gone
            yield from self.engine.plan_shed(self.ns, st, lim.max_namespace_bytes)
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

    def conflict(self, op: Op, row: EntryRow | None, wanted: str) -> Conflict:
        current = row.version if row is not None else None
        return Conflict(
            f"botwire: {op.kind} of key {op.key!r} in namespace {self.ns!r} expected {wanted} "
            f"but the current version is {current if current is not None else 'absent'}; "
            "read the entry again and retry (or use update()).",
            namespace=self.ns,
            key=op.key,
            current_version=current,
        )

    def check_version(self, op: Op, row: EntryRow | None) -> None:
        if op.if_absent and row is not None:
            raise self.conflict(op, row, "the key to be absent")
        if op.if_version is not None and (row is None or row.version != op.if_version):
            raise self.conflict(op, row, f"version {op.if_version}")

    def list_limit(self, op: Op, what: str, quota: str, limit: int, fix: str) -> ValueTooLarge:
        return ValueTooLarge(
            f"botwire: {what} to list {op.key!r} in namespace {self.ns!r}; this server's "
            f"{quota} is {limit}. Use max_len= to keep the list bounded, or {fix}.",
            namespace=self.ns,
            key=op.key,
            quota=quota,
            limit=limit,
        )

    # -- lists -------------------------------------------------------------------------------

    def list_of(self, op: Op, row: EntryRow | None, what: str) -> Plan[tuple[int, int, int, int]]:
        """(head, tail, length, content bytes) of the list at ``op.key``, converting a JSON array
        stored by ``set`` into list rows once so that later appends do not rewrite it."""
        if row is not None and row.kind == LIST:
            content = row.bytes - utf8_len(op.key) - 2 - max(row.length - 1, 0)
            return row.head, row.tail, row.length, content
        floor = yield from self.engine.rows.plan_floor(self.ns, op.key)  # above any leftovers
        if row is None:
            return floor, floor, 0, 0
        value = decode(row.value or "null")
        if not isinstance(value, list):
            raise self.engine._not_a_list(self.ns, op.key, value, what)
        items = [dumps(v) for v in value]
        sizes = [utf8_len(t) for t in items]
        yield (
            "many",
            INSERT_ITEM_SQL,
            [
                (self.ns, op.key, floor + i, t, s)
                for i, (t, s) in enumerate(zip(items, sizes, strict=True))
            ],
        )
        return floor, floor + len(items), len(items), sum(sizes)

    def trim(self, key: str, head: int, tail: int, keep: int, content: int) -> Plan[int]:
        """Drop the list's items below ``tail - keep`` (``[head, tail)`` are live); return the
        content bytes left (``Engine.rows``: at once, or logically on SQLite)."""
        return (yield from self.engine.rows.plan_trim(self.ns, key, head, tail, keep, content))

    def check_list_growth(self, op: Op, row: EntryRow | None, added: int, added_bytes: int) -> None:
        """Refuse, before any row is written, a list that would outgrow the list limits once
        ``max_len`` has trimmed it (every read or trim of it is then bounded too)."""
        engine = self.engine
        if not (engine.max_list_length or engine.max_list_bytes):
            return
        if row is None:
            length, size = 0, utf8_len(op.key) + 2
        elif row.kind == LIST:
            length, size = row.length, row.bytes
        else:
            return  # a JSON array from set(): within max_value_bytes, checked again below
        new_length = length + added
        max_len = self.max_len(op)
        kept = min(new_length, max_len) if max_len is not None else new_length
        if engine.max_list_length and kept > engine.max_list_length:
            raise self.list_limit(
                op,
                f"the list would hold {kept} items after this append",
                "max_list_length",
                engine.max_list_length,
                "delete it or start a new key",
            )
        # bytes: exact without max_len; with max_len the trimmed size is known only after
        # trimming, so the untrimmed size is checked only when nothing is trimmed
        if engine.max_list_bytes and kept == new_length:
            new_size = size + added_bytes + added - (1 if length == 0 and added else 0)
            if new_size > engine.max_list_bytes:
                raise self.list_limit(
                    op,
                    f"the list would hold {new_size} bytes of JSON after this append",
                    "max_list_bytes",
                    engine.max_list_bytes,
                    "delete it or start a new key",
                )
