"""The semantics of every operation, written once over SQL for SQLite and PostgreSQL.

A backend supplies a :class:`Tx` (a transaction it has begun, with its hooks) and a way to
allocate versions; the engine does the rest: conditions, lists, counters, TTL, limits, quotas
and idempotency. Every write first locks its namespace's statistics row, so the writes of one
namespace are serialized — which makes version checks and quotas exact, on one machine or many.

The engine is split by responsibility (``docs/design.md`` §6): this module plans a batch
(:meth:`Engine.apply`: lock, idempotency, savepoints, statistics); ``_sqlops`` holds the
operations as a table of handlers, ``_sqlctx`` the state and checks they share, ``_sqlread``
the reads, ``_sqlmaint`` clearing, purges and sweeps, ``_sqlbase`` the records, :class:`Tx` and
the namespace lock, ``_sqltext`` the SQL text. Their public names are importable from here.

The write path is sans-I/O (``_sqlplan``): :meth:`Engine.plan_apply` yields its statements and
receives their results, so one definition serves a synchronous driver (:meth:`Engine.apply`)
and PostgreSQL's event loop (``botwire_server.storage._pg_write``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._codec import decode, dumps
from .._errors import BotWireError, InvalidArgument
from .._types import Op
from ._sqlbase import (
    IDEMPOTENCY_SECONDS,
    MAX_BATCH_OPS,
    MAX_IDEMPOTENCY_RECORDS,
    SMALL_RECORD,
    EntryRow,
    Stats,
    Tx,
    TxHooks,
    _today,
    check_batch_size,
    fingerprint,
    list_bytes,
    utf8_len,
)
from ._sqlctx import Carry, Ctx, OldestRecords
from ._sqlplan import RELEASE, ROLLBACK, SAVEPOINT, Plan, drive
from ._sqltext import (
    DAY,
    LIST,
    PG_OCTETS,
    SQLITE_OCTETS,
    JSONEntry,
    idempotency_query,
    load_query,
    prefix_upper_bound,
    recount_sql,
)
from ._sqlwatch import Watching

__all__ = [
    "IDEMPOTENCY_SECONDS",
    "MAX_BATCH_OPS",
    "MAX_IDEMPOTENCY_RECORDS",
    "PG_OCTETS",
    "SQLITE_OCTETS",
    "Engine",
    "JSONEntry",
    "Tx",
    "TxHooks",
    "check_batch_size",
    "fingerprint",
    "idempotency_query",
    "load_query",
    "prefix_upper_bound",
    "recount_sql",
]

#: Op kinds whose results carry stored values (kept idempotency answers must not outlive them).
_VALUE_KINDS = frozenset(("get", "pop", "incr"))
#: Entries read ahead with a write's namespace lock (``Engine.write_prefetch``): a batch of
#: that many keys costs the round trips of one write.
PREFETCH_KEYS = 100


class Engine(Watching):
    """Applies operations inside a backend's transaction (see module docstring); reads
    (``_sqlread.Reads``), maintenance (``_sqlmaint.Maintenance``) and the change feed
    (``_sqlwatch.Watching``) are inherited."""

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
        """:meth:`plan_apply` run on ``tx`` (synchronously)."""
        plan = self.plan_apply(
            ns,
            ops,
            atomic=atomic,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            now=now,
        )
        return drive(tx, plan, self._next_version)

    def plan_apply(
        self,
        ns: str,
        ops: Sequence[Op],
        *,
        atomic: bool,
        idempotency_key: str | None,
        fingerprint: str | None,
        now: float,
        held: bool = False,
        carry: Carry | None = None,
    ) -> Plan[list[dict[str, Any]]]:
        """Apply a batch under the namespace lock; raise (atomic) or record per-op errors.
        Sans-I/O (``_sqlplan``): the statements are yielded to the backend's driver.
        ``held``: the transaction already holds the namespace lock (``plan_lock``);
        ``carry``: what the group transaction's earlier calls left known (:class:`Carry`):
        with ``held`` and its statistics, the lock is not read and the version comes from the
        driver's ``"version"`` request; updated when the batch is applied."""
        check_batch_size(ns, len(ops))
        mutating = any(op.mutates for op in ops)
        base: Stats | None = None
        version: int | None = None
        locks = self.takes_lock(ops)
        carried = carry if locks else None  # a call that takes no lock leaves it as it is
        if held and carried is not None and carried.stats is not None:
            # the lock is the transaction's: the time of its first call (the database's clock
            # is read once per transaction) and the statistics its last call saved
            if self.db_clock:
                now = carried.now
            stats = _today(carried.stats.copy(), now)
        elif locks:  # gets and checks take no lock and create no row
            stats, now, version = yield from self.plan_lock(ns, now, held)
        elif self.db_clock:  # reads still need the database's time (no row is created)
            now = yield from self.plan_db_now(now)
            stats = Stats(0, 0, int(now // DAY), 0)
            base = stats.copy()
        else:
            # Counting from zero is exact for the row's changes; totals only matter to limits.
            # A write reads the row anyway for the namespace's retention policy (one lookup).
            lim = self.limits
            limited = lim.max_namespace_bytes or lim.max_keys or lim.writes_per_day
            stats = Stats(0, 0, int(now // DAY), 0)
            if mutating:
                peeked = yield from self.plan_peek(ns, now)
                if limited:
                    stats = peeked
                else:
                    stats.ttl, stats.max_len = peeked.ttl, peeked.max_len
                    stats.records = peeked.records  # absolute, as plan_add writes it
            base = stats.copy()
        if not mutating:
            idempotency_key = None  # a read changes nothing to replay: no record (issue 13)
        records = carried.records.copy() if carried is not None else None
        kept = 0
        if idempotency_key is not None:
            done = None  # a record this transaction dropped was read ahead before it went
            if records is None or idempotency_key not in records.dropped:
                done = yield ("one", *idempotency_query(ns, idempotency_key))
            if done is not None and (done[0] or "").split(" ", 1)[0] != fingerprint:
                raise InvalidArgument(
                    f"botwire: Idempotency-Key {idempotency_key!r} was already used in namespace "
                    f"{ns!r} for a different request; use a new key for every new request.",
                    namespace=ns,
                )
            if done is not None:
                replay: list[dict[str, Any]] = decode(done[1])
                return replay
            kept = yield from self.plan_records(ns, stats)
        known = dict(carried.entries) if carried is not None else None
        ctx = Ctx(self, ns, now, stats, version, known)
        results: list[dict[str, Any]] = []
        for op in ops:
            if atomic:
                results.append((yield from ctx.apply(op)))
                continue
            saved = stats.copy()
            had_version = ctx.has_version
            yield SAVEPOINT
            try:
                results.append((yield from ctx.apply(op)))
            except BotWireError as exc:
                yield ROLLBACK
                ctx.untrack()  # the op's row changes were undone
                ctx.stats = stats = saved
                if not had_version:
                    # The rollback may have undone the version's allocation (SQLite's counter is
                    # a row): the next op takes a fresh one rather than reuse an unrecorded one.
                    ctx.forget_version()
                results.append(exc.to_payload())
            yield RELEASE
        excess = 0
        if idempotency_key is not None:
            excess = yield from self._record(
                ctx, ops, idempotency_key, fingerprint, dumps(results), kept, records
            )
        written = ctx.now if mutating else None  # the namespace's idle age restarts
        if base is None:
            yield from self.plan_save(ns, ctx.stats, written)
        else:
            yield from self.plan_add(ns, ctx.stats, base, written)
        if excess:  # after the save: a relative update of the bytes
            yield from self.plan_drop_oldest(ns, excess, idempotency_key or "")
        if ctx.deleted:  # after the save: a relative update of the bytes
            yield from self.plan_forget_records(ns, ctx.deleted, idempotency_key)
        if carried is not None:
            if idempotency_key is not None:
                carried.full = (ctx.stats.records or 0) >= MAX_IDEMPOTENCY_RECORDS
            if ctx.carryable and not excess and not ctx.deleted and ctx.known is not None:
                carried.stats, carried.now, carried.entries = ctx.stats.copy(), ctx.now, ctx.known
                if records is not None:
                    carried.records = records
            else:  # records dropped or rows changed untracked: the next calls read them
                carried.stats = None
        return results

    def takes_lock(self, ops: Sequence[Op]) -> bool:
        """Whether :meth:`plan_apply` of ``ops`` takes the namespace lock (a write, on a backend
        that locks first); a transaction that ran it (and kept it) holds the lock after."""
        return self._lock_first and any(op.mutates for op in ops)

    def trim_list(self, tx: Tx, ns: str, key: str, now: float) -> bool:
        """Housekeeping: trim list ``key`` to its namespace's ``max_list_len`` (lowered since it
        grew), as an append would, with a new version; counts no write and keeps the list's
        expiry and the namespace's idle age. Whether it was trimmed."""
        return drive(tx, self.plan_trim_list(ns, key, now), self._next_version)

    def plan_trim_list(self, ns: str, key: str, now: float) -> Plan[bool]:
        """:meth:`trim_list`'s plan."""
        stats, now, version = yield from self.plan_lock(ns, now)
        ctx = Ctx(self, ns, now, stats, version)
        limit = ctx.max_list_len
        row = yield from ctx.load(key)
        if row is None or row.kind != LIST or limit is None or row.length <= limit:
            yield from self.plan_save(ns, ctx.stats)
            return False
        content = row.bytes - utf8_len(key) - 2 - max(row.length - 1, 0)
        content = yield from ctx.trim(key, row.head, row.tail, limit, content)
        new = EntryRow(
            kind=LIST,
            value=None,
            version=(yield from ctx.version()),
            created_at=row.created_at,
            updated_at=now,
            expires_at=row.expires_at,
            bytes=list_bytes(utf8_len(key), content, limit),
            length=limit,
            head=row.tail - limit,
            tail=row.tail,
        )
        yield from ctx.store(key, row, new)
        yield from self.plan_save(ns, ctx.stats)
        return True

    def write_prefetch(
        self, ns: str, ops: Sequence[Op], idempotency_key: str | None
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """The reads :meth:`apply` will issue right after the namespace lock (the idempotency
        record, then each key's entry, in the order of the ops): a pipelining backend may
        send them with the lock (``Tx.lock``) and hand each result out, once, when the
        identical query comes.

        Each stays true until the plan asks for it, whatever the plan runs before: the lock
        keeps other writers out, and every statement an op runs concerns its own key, which
        it loads first (``Ctx.load``) before changing it. So a key is named for its first op
        other than ``get`` (a ``get`` changes nothing and reads with another query; a later op
        on the key reads what the first one wrote, afresh), and at most :data:`PREFETCH_KEYS`
        keys (what a refused op leaves unread is wasted)."""
        queries: list[tuple[str, tuple[Any, ...]]] = []
        if idempotency_key is not None:
            queries.append(idempotency_query(ns, idempotency_key))
        seen: set[str] = set()
        for op in ops:
            if op.kind == "get" or op.key in seen:
                continue
            seen.add(op.key)
            queries.append(load_query(ns, op.key))
            if len(seen) == PREFETCH_KEYS:
                break
        return queries

    def _record(
        self,
        ctx: Ctx,
        ops: Sequence[Op],
        ikey: str,
        fp: str | None,
        response: str,
        kept: int,
        old: OldestRecords | None = None,
    ) -> Plan[int]:
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
        statement. Return how many of the oldest records the caller drops after saving the
        statistics (:meth:`plan_drop_oldest`): the usual case at the 1,000th record, where only
        their number is over, costs no round trip. In a group transaction that read the oldest
        records ahead (``old``), they are dropped here by their keys (:meth:`plan_drop_known`),
        which keeps the statistics exact for the next call.
        """
        ns, stats = ctx.ns, ctx.stats
        # Only answers that carry stored values (get, pop, incr) can replay deleted data;
        # versions and flags cannot. The scope is the one key whose values the answer holds,
        # "*" for several, "" for none (no key is empty: a delete matches none), so a retried
        # bulk delete or a transaction beside an unrelated delete still replays.
        keys = {op.key for op in ops if op.kind in _VALUE_KINDS}
        scope = next(iter(keys)) if len(keys) == 1 else ("*" if keys else "")
        yield (
            "run",
            "INSERT INTO bw_idempotency (ns, ikey, fingerprint, created_at, response)"
            " VALUES (?, ?, ?, ?, ?)",
            (ns, ikey, f"{fp or '0' * 64} {scope}", ctx.now, response),
        )
        if old is not None:
            old.floor = min(old.floor, ctx.now)
        size_of = utf8_len(response)  # bytes, like the data's (issue 13: not characters)
        stats.bytes += size_of
        count, size = kept + 1, 0
        budget = self.idempotency_budget()
        if size_of > SMALL_RECORD:
            row = yield (
                "one",
                f"SELECT count(*), coalesce(sum({self.octets}), 0) FROM bw_idempotency"
                " WHERE ns = ?",
                (ns,),
            )
            count, size = (int(row[0]), int(row[1])) if row else (0, 0)
        stats.records = count
        cap = self.limits.max_namespace_bytes
        if size > budget or (cap and stats.bytes > cap):
            ctx.carryable = False  # records dropped: a later call's prefetched one may be gone
            stats.records = yield from self.plan_shed(
                ns, stats, cap, keep=ikey, count=count, size=size
            )
        elif count > MAX_IDEMPOTENCY_RECORDS:
            stats.records = MAX_IDEMPOTENCY_RECORDS
            excess = count - MAX_IDEMPOTENCY_RECORDS
            if old is None or not (yield from self.plan_drop_known(ns, stats, old, excess, ikey)):
                return excess
        if cap and stats.bytes > cap:
            ctx.refuse_bytes(ops[0].key if len(keys) == 1 else "*", "the idempotency record of")
        return 0
