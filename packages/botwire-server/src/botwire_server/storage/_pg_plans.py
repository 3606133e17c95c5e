"""The plans of the event loop's write transactions on PostgreSQL (issue 22): a group's calls
one after the other on their namespace's lock (:func:`group_plan`), a lone write that others join
(:func:`lone_plan`), the next groups of several namespaces in one transaction
(:func:`multi_plan`). :class:`~botwire_server.storage._pg_group.NamespaceGroups` decides which
calls run together; these say how, as plans (``botwire.store._sqlplan``) driven by
``AsyncPgTx``. In a group:

- each call runs its own plan (``Engine.plan_apply``: the lock, its idempotency record, quotas,
  versions) after the calls before it, exactly as if it had waited for their commits; its
  entries are read ahead with its lock, as a lone write's are;
- until a call has been applied, each call runs inside ``SAVEPOINT bw_req``: its lock's upsert
  (which may create the namespace's row) is undone with it if it is refused. Once one has been
  applied, the transaction holds the namespace's lock, so the calls after it only read the
  statistics row (``held``: the upsert would write a new version of the row, and its WAL, per
  call), and get no savepoint up front (``AsyncPgTx.mark``): refused while their writes are
  still queued, the writes are dropped; a savepoint is put before them only when they must be
  sent before the call ends (it reads what it had not prefetched);
- and while the lock has been held since the group's first statements, the calls after the
  first read nothing they already know (``Carry``): the reads of every call ride with the
  first lock, the versions of the calls after it are allocated right behind it
  (``AsyncPgTx.reserve``), and the statistics and the entries the earlier calls saved are
  handed on in memory, and so are the namespace's oldest idempotency records, read ahead for
  its keyed calls, so that a call over the 1,000 records drops the oldest by its key and the
  statistics stay exact; a group is then two round trips whatever its size (it was one more per
  call: each read the lock and its entries after the writes of the one before). A call that
  changes what is not tracked (idempotency records shed or forgotten with a delete, a
  rolled-back op of a non-atomic batch; a purge's keys are tracked) ends this for the rest of
  the group; a refused call that had taken the lock released it with its rollback, so what
  was read with it may change: the next call that takes the lock starts afresh, its reads and
  the later calls' with it;
- one call's refusal (a :class:`~botwire.BotWireError`: a failed check, a quota) undoes only
  its own changes.

The writes that arrive while a transaction's first round trip (the lock and its reads) is in
flight **join it** (``lone_plan`` for a lone write, ``group_plan`` for a group, ``_joined_plan``
for both): once its calls are applied, they are taken, their reads and versions are sent with
its writes (``AsyncPgTx.ahead``), what its calls left known is handed on, and one more round
trip carries their writes and the one ``COMMIT``. Nobody joins a transaction that leaves
nothing to hand on (``Carry``: e.g. at the 1,000-record cap a lone write drops the oldest
record by a relative update, unless the replica knew the namespace full and read that record
with its lock), nor one whose calls were all refused (the lock is not held): the joined calls
would each need a round trip of their own.

**Several namespaces in one transaction** (:func:`multi_plan`). A transaction per namespace
costs the server a transaction's work and a round trip or two per namespace (measured, 32
APPENDs in flight in-process: ~130 µs of the server's CPU a transaction against ~150 a call).
So the next groups of several namespaces that become ready together share one: the rows of all
their namespaces are locked by one statement (:func:`lock_many_sql`, in name order, so that no
two such transactions wait for each other), which writes no new version of them (the upsert
does), and each namespace's statistics, the reads of all its calls and their versions ride in
the same round trip; every call then runs on its namespace's held lock as a group's calls after
the first do, and the writes of all ride with the one ``COMMIT``: two round trips for all. A
namespace whose row does not exist yet is not locked by that statement: its calls run last, as
a group's (the upsert in a savepoint, undone with a refused call, so a refused first write
leaves no row behind, as alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botwire._errors import BotWireError
from botwire.store._sqlctx import Carry
from botwire.store._sqlplan import Plan
from botwire.store._sqltext import GROUP_RELEASE_SQL, GROUP_ROLLBACK_SQL, GROUP_SAVEPOINT_SQL

from ._pg_write import Query

__all__ = [
    "MAX_NAMESPACES",
    "GroupedWrite",
    "Outcome",
    "Results",
    "group_plan",
    "lock_many_sql",
    "lone_plan",
    "multi_plan",
]

_SAVEPOINT = ("run", GROUP_SAVEPOINT_SQL, ())
_ROLLBACK = ("run", GROUP_ROLLBACK_SQL, ())
_RELEASE = ("run", GROUP_RELEASE_SQL, ())
_MARK = ("mark",)
#: reads ahead with a group's first lock, at most (``Engine.write_prefetch``'s are 101 per call)
MAX_READS = 200
#: namespaces whose next groups share one transaction, at most (``multi_plan``)
MAX_NAMESPACES = 8

Results = list[dict[str, Any]]
Outcome = Results | Exception


@dataclass(frozen=True, slots=True)
class GroupedWrite:
    """One caller's write: its namespace, the plan of its batch (a factory: a plan runs once),
    the reads its lock may carry (``Engine.write_prefetch``) and whether it takes the namespace
    lock (``Engine.takes_lock``)."""

    namespace: str
    #: ``plan(held, carry)``: ``held`` when the transaction already holds the namespace lock;
    #: ``carry``, what its earlier calls left known (``Engine.plan_apply``)
    plan: Callable[[bool, Carry | None], Plan[Results]]
    prefetch: Sequence[Query]
    locks: bool = True
    #: a keyed write: ``oldest(n)``, the query of its namespace's ``n`` oldest idempotency
    #: records (``Engine.oldest_query``), read ahead once for a group's keyed calls
    oldest: Callable[[int], Query] | None = None

    def alone(self) -> Plan[Results]:
        """The plan of a transaction of its own."""
        return self.plan(False, None)

    def lone_reads(self, full: bool) -> Sequence[Query]:
        """What its lock carries as a lone write (``lone_plan``): its reads and, for a keyed
        write to a namespace at its 1,000 records (``full``), the oldest record."""
        if not full or self.oldest is None:
            return self.prefetch
        return [*self.prefetch, self.oldest(1)]


def group_plan(
    calls: Sequence[GroupedWrite], join: Callable[[], Sequence[GroupedWrite]]
) -> Plan[list[Outcome]]:
    """The calls' plans, one after the other in one transaction, each in its savepoint; the
    writes of their namespace that arrived meanwhile join it (``join``), as a lone write's do."""
    outcomes: list[Outcome] = []
    carry = yield from _calls_plan(calls, outcomes, held=False)
    if carry is not None:
        yield from _joined_plan(join, outcomes, carry)
    return outcomes


def lone_plan(
    first: GroupedWrite, join: Callable[[], Sequence[GroupedWrite]], carry: Carry | None = None
) -> Plan[list[Outcome]]:
    """A lone write's transaction, which the writes of its namespace that arrived while it ran
    join (``join()``: the calls taken, once the first is applied and before its ``COMMIT`` is
    sent). The first runs as a write of its own (no savepoint: its refusal rolls the
    transaction back, before anyone joined); the calls that joined run after it on the lock it
    holds, as a group's calls after an applied one do (``_joined_plan``).

    ``carry``: a fresh one, its ``full`` the replica's hint that the namespace keeps its 1,000
    idempotency records: a keyed first call then has the oldest record read with its lock
    (``GroupedWrite.lone_reads``) and drops it by its key, so the statistics stay exact and
    the transaction takes joiners (dropped by a relative update, it could not); ``full`` is
    what the calls leave it."""
    carry = carry or Carry()
    if carry.full and first.oldest is not None:
        carry.records.ahead = 1
    outcomes: list[Outcome] = [(yield from first.plan(False, carry))]
    if first.locks:
        yield from _joined_plan(join, outcomes, carry)
    return outcomes


def _joined_plan(
    join: Callable[[], Sequence[GroupedWrite]], outcomes: list[Outcome], carry: Carry
) -> Plan[None]:
    """The calls that join a transaction holding its namespace's lock, after the calls applied
    in it: what those left known is handed on (``carry``), and the joined calls' reads and
    versions go in one round trip with the writes queued so far."""
    if carry.stats is None:
        # Nothing to hand on: an applied call changed what no call tracks (e.g. it dropped the
        # oldest idempotency record at the cap by a relative update). Joined, each call would
        # read its lock row and entries in a round trip of its own; the writes waiting form
        # the next group instead, whose lock reads them all at once.
        return
    late = join()
    if not late:
        return
    # the oldest records are read again, after the writes of the calls applied so far
    yield ("ahead", _reads_ahead(late, carry), len(late))
    yield from _calls_plan(late, outcomes, held=True, carry=carry)


def _calls_plan(
    calls: Sequence[GroupedWrite],
    outcomes: list[Outcome],
    held: bool,
    carry: Carry | None = None,
) -> Plan[Carry | None]:
    """The calls' plans in the transaction, each outcome appended; ``held``: the transaction
    already holds the namespace's lock; ``carry``: what the calls before them left known.
    Returns what they leave known while the transaction holds the lock (``None``: nothing)."""
    # The lock is the transaction's once a call was applied (released into it); a refused
    # call's rollback to its savepoint released the lock it took, if it was the first.
    for i, call in enumerate(calls):
        # On the held lock a call's savepoint is put in only if its writes must leave before
        # it ends (AsyncPgTx.mark); the lock's upsert is undone by its savepoint.
        lazy = held
        yield _MARK if lazy else _SAVEPOINT
        if not held and call.locks:
            # this call takes the lock: the reads of every call left ride with it, and the
            # versions of the calls after it are allocated right behind it
            carry = Carry()
            yield ("prefetch", _reads_ahead(calls[i:], carry))
            yield ("reserve", len(calls) - i - 1)
        elif carry is None:
            yield ("prefetch", call.prefetch)  # rides with this call's lock
        refused = False
        try:
            outcomes.append((yield from call.plan(held, carry)))
            held = held or call.locks
        except BotWireError as exc:  # refused: only this call's changes are undone
            refused = True
            outcomes.append(exc)
            if not lazy:
                yield _ROLLBACK
        if carry is not None and (not held or carry.stats is None):
            # a refused call released the lock it took: what was read with it may change
            # before the next call takes it again (and reads afresh); or an applied call
            # changed what no call tracks (``Carry``): the calls after it read it
            carry = None
        yield ("unmark", refused) if lazy else _RELEASE
    return carry if held else None


def lock_many_sql(count: int) -> str:
    """The row locks of ``count`` namespaces' statistics rows, in name order (``multi_plan``):
    every transaction that locks several namespaces at once takes them in the same order, so
    no two wait for each other; a namespace without a row is not locked (not returned)."""
    marks = ", ".join("?" * count)
    return f"SELECT ns FROM bw_namespaces WHERE ns IN ({marks}) ORDER BY ns FOR NO KEY UPDATE"


def multi_plan(groups: Sequence[Sequence[GroupedWrite]]) -> Plan[list[Outcome]]:
    """The next groups of several namespaces (in name order) in one transaction: the rows of
    all their namespaces locked by one statement and, in the same round trip, each namespace's
    statistics, the reads of all its calls and the versions of its calls after the first, so
    that the calls then run on held locks (``_calls_plan``'s ``held``) and the transaction is
    two round trips whatever its namespaces (a transaction each was two or three).

    Each namespace's first call is started ahead to learn the read its held lock issues (its
    ``now`` and name), which then rides with the locks. A namespace whose row does not exist
    (its first write) is not locked by the statement: its calls run last, as a group's do (its
    lock's upsert in a savepoint, undone with a refused call). Outcomes in the order of the
    calls, group after group."""
    per: list[list[Outcome]] = [[] for _ in groups]
    carries = [Carry() for _ in groups]
    started: list[tuple[int, Plan[Results], tuple[Any, ...]]] = []
    rest: list[tuple[int, int]] = []  # (group, its first call left) run as a group's calls
    for g, calls in enumerate(groups):
        plan = calls[0].plan(True, carries[g])
        try:
            request = plan.send(None)
        except BotWireError as exc:  # refused before its lock
            per[g].append(exc)
            rest.append((g, 1))
            continue
        if request[0] != "lock":
            plan.close()
            rest.append((g, 0))
            continue
        started.append((g, plan, request))
    if started:
        names = tuple(groups[g][0].namespace for g, _, _ in started)
        lock: Query = (lock_many_sql(len(names)), names)
        reads: list[Query] = [lock]
        versions = 0
        for g, _, request in started:
            calls = groups[g]
            reads.append((request[1], tuple(request[2])))
            reads.extend(_reads_ahead(calls, carries[g]))
            versions += len(calls) - 1
        yield ("ahead", reads, versions)
        locked = {row[0] for row in (yield ("all", *lock))}
        for g, plan, request in started:
            calls = groups[g]
            if calls[0].namespace not in locked:
                plan.close()
                rest.append((g, 0))
                continue
            yield _MARK
            refused = False
            try:
                per[g].append((yield from _resumed(plan, request)))
            except BotWireError as exc:
                refused = True
                per[g].append(exc)
            yield ("unmark", refused)
            # what the first call left untracked (or, refused, never read) is read afresh
            carry = carries[g] if carries[g].stats is not None else None
            yield from _calls_plan(calls[1:], per[g], held=True, carry=carry)
    for g, first in sorted(rest):
        yield from _calls_plan(groups[g][first:], per[g], held=False)
    return [outcome for outcomes in per for outcome in outcomes]


def _resumed(plan: Plan[Results], request: tuple[Any, ...]) -> Plan[Results]:
    """``plan``, already started (its first request: ``request``), driven on as ``yield from``
    would have driven it."""
    while True:
        try:
            result = yield request
        except BaseException as exc:  # a failed statement, thrown in by the driver
            try:
                request = plan.throw(exc)
            except StopIteration as stop:
                done: Results = stop.value
                return done
        else:
            try:
                request = plan.send(result)
            except StopIteration as stop:
                done = stop.value
                return done


def _reads_ahead(calls: Sequence[GroupedWrite], carry: Carry) -> list[Query]:
    """What a lock held for ``calls`` reads ahead for them: their reads (:func:`_reads`) and,
    for their keyed calls, the namespace's oldest idempotency records, one per keyed call
    (each may drop the oldest: which, and its bytes), which ``carry`` is told to expect."""
    reads = _reads(calls)
    keyed = [c.oldest for c in calls if c.oldest is not None]
    if keyed:
        carry.records.rows, carry.records.ahead = None, len(keyed)
        reads.append(keyed[0](len(keyed)))
    return reads


def _reads(calls: Sequence[GroupedWrite]) -> list[Query]:
    """Every call's reads ahead, each once (a second call reading the same row reads what the
    first left: ``Carry``, or the database, as each prefetched result is handed out once)."""
    seen: dict[Query, None] = {}
    for call in calls:
        for query in call.prefetch:
            seen.setdefault(query, None)
            if len(seen) == MAX_READS:
                return list(seen)
    return list(seen)
