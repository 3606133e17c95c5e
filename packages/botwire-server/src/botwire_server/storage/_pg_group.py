"""Group commit of one namespace's concurrent writes on the event loop (PostgreSQL, issue 22).

The writes of one namespace are serialized by its statistics row's lock (``docs/design.md``
§6): while one is in flight, the next can only wait for that ``COMMIT``, holding a connection.
So a write that finds another write of its namespace in flight on this replica joins the
namespace's next *group* instead, and when the write in flight is done the group runs as one
transaction:

- a group holds at most ``MAX_GROUP`` (32) calls; each runs its own plan
  (``Engine.plan_apply``: the lock, its idempotency record, quotas, versions) after the calls
  before it, exactly as if it had waited for their commits; its entries are read ahead with its
  lock, as a lone write's are;
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
  its own changes;
- one ``COMMIT`` (one WAL flush) for all, and every caller is answered after it, never before;
- a database error that is not retried (a statement PostgreSQL refuses) has failed the whole
  transaction: its calls then run again one at a time, so it fails only the call that caused
  it. Retries and lost connections are the single write's (``AsyncPgReader._write``): the group
  runs again whole, or, when its ``COMMIT`` may have been sent, every caller learns the outcome
  is unknown.

A lone write runs at once, as before: grouping adds no wait, only fewer transactions. The
writes that arrive while a transaction's first round trip (the lock and its reads) is in flight
**join it** instead of waiting for its ``COMMIT`` (``lone_plan`` for a lone write, ``group_plan``
for a group, ``_joined_plan`` for both): once its calls are applied, they are taken, their reads
and versions are sent with its writes (``AsyncPgTx.ahead``), what its calls left known is handed
on, and one more round trip carries their writes and the one ``COMMIT``: three round trips and
one WAL flush for all, where they cost a transaction of their own after it (LangGraph's
``put_writes`` and ``put`` of a step arrive together and write one namespace; traced under
P10, four in five of the writes that found one in flight arrived during its first round trip;
under P3's load nearly every write finds a *group* in flight). Nobody joins a transaction that
leaves nothing to hand on (``Carry``: e.g. at the 1,000-record cap a lone write drops the
oldest record by a relative update, unless this replica knew the namespace full and read that
record with its lock, ``_note_full``), nor one whose calls were all refused (the lock is not
held): the joined calls would each need a round trip of their own. A lone write's refusal
rolls it back before anyone joined; if a transaction is tried again, the calls that joined run
in it again, and if this time they cannot join (the lone write, or all of a group, refused)
they wait first in line for the next group, never applied meanwhile (``_transaction``). When
a group is done, the next one starts before its callers are answered: its first statements
reach PostgreSQL while the answers are written (measured, 6 processes adding chat messages to
one session: 1,235 -> 1,412 adds/s, medians of 7 runs). Versions stay in commit order: the
calls allocate theirs in the order they run, inside the transaction, behind the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botwire._errors import BotWireError
from botwire.store._sqlctx import Carry
from botwire.store._sqlplan import Plan
from botwire.store._sqltext import GROUP_RELEASE_SQL, GROUP_ROLLBACK_SQL, GROUP_SAVEPOINT_SQL

from ._group import MAX_GROUP, as_exception, settle
from ._pg_write import Query

__all__ = ["GroupedWrite", "NamespaceGroups", "group_plan", "lone_plan"]

_SAVEPOINT = ("run", GROUP_SAVEPOINT_SQL, ())
_ROLLBACK = ("run", GROUP_ROLLBACK_SQL, ())
_RELEASE = ("run", GROUP_RELEASE_SQL, ())
_MARK = ("mark",)
#: reads ahead with a group's first lock, at most (``Engine.write_prefetch``'s are 101 per call)
MAX_READS = 200
#: namespaces remembered as keeping their 1,000 idempotency records (``NamespaceGroups``)
MAX_FULL = 4096

Results = list[dict[str, Any]]
Outcome = Results | Exception
#: ``AsyncPgReader._write``: runs a fresh plan from the factory per attempt, in a transaction.
Run = Callable[[Callable[[], Plan[Any]], Sequence[Query] | None], Awaitable[Any]]


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
    reads = _reads(late)
    keyed = [c.oldest for c in late if c.oldest is not None]
    if keyed:  # each may drop the oldest record: which, and its bytes (read after the writes)
        carry.records.rows, carry.records.ahead = None, len(keyed)
        reads.append(keyed[0](len(keyed)))
    yield ("ahead", reads, len(late))
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
            reads = _reads(calls[i:])
            keyed = [c.oldest for c in calls[i:] if c.oldest is not None]
            if keyed:  # each may drop the oldest record: which, and its bytes
                carry.records.ahead = len(keyed)
                reads.append(keyed[0](len(keyed)))
            yield ("prefetch", reads)
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


class _Waiter:
    """A call waiting for its namespace's write in flight; ``started`` once its group runs."""

    __slots__ = ("call", "future", "started")

    def __init__(self, call: GroupedWrite, future: asyncio.Future[Results]) -> None:
        self.call, self.future, self.started = call, future, False


class NamespaceGroups:
    """Runs writes through ``run``, one transaction at a time per namespace; the writes that
    arrive meanwhile form that namespace's next group.

    Example (what :class:`~botwire_server.storage._pg_async.AsyncPgReader` does)::

        groups = NamespaceGroups(reader._write, timeout=5.0, late=too_late)
        results = await groups.write(GroupedWrite("user-42", make_plan, prefetch))
    """

    def __init__(
        self, run: Run, *, timeout: float, late: Callable[[str, float], Exception]
    ) -> None:
        """``timeout``: how long a call may wait for its group to start (the pool's wait, which
        it replaces); then it is withdrawn and ``late(namespace, timeout)`` raised to its
        caller."""
        self._run = run
        self._timeout, self._late = timeout, late
        #: namespace -> the calls waiting for its write in flight (present while one is)
        self._waiting: dict[str, list[_Waiter]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: namespaces whose last lone keyed write left them at their 1,000 records
        #: (``_note_full``), in the order noted
        self._full: dict[str, None] = {}
        #: transactions that ran more than one call, and the calls in them (``/metrics``, as
        #: ``_group.WriteGroups``'s)
        self.groups = 0
        self.writes = 0

    async def write(self, call: GroupedWrite) -> Results:
        """The call's results once its transaction committed (or its own error).

        A call that waits is withdrawn if its caller gives up (cancelled) or ``timeout`` passes
        before its group starts, as a write waiting for a pooled connection was; once its
        group started it is applied, and only the answer can be lost (the client retries with
        its Idempotency-Key)."""
        waiting = self._waiting.get(call.namespace)
        if waiting is not None:
            loop = asyncio.get_running_loop()
            waiter = _Waiter(call, loop.create_future())
            waiting.append(waiter)
            timer = loop.call_later(self._timeout, self._expire, waiter)
            try:
                return await waiter.future
            finally:
                timer.cancel()
        self._waiting[call.namespace] = []
        try:
            outcome = (await self._transaction(call.namespace, [call]))[0]
        finally:
            self._next(call.namespace)
        if isinstance(outcome, Exception):  # a statement PostgreSQL refused, run alone
            raise outcome from None
        return outcome

    async def _transaction(self, namespace: str, calls: list[GroupedWrite]) -> list[Outcome]:
        """``calls`` in one transaction (a lone write's, or a group's), which the writes of
        ``namespace`` that arrive while its first round trip is in flight join
        (``_joined_plan``); the outcomes of ``calls`` are returned, the joined callers are
        answered here, after its ``COMMIT``.

        Raised, after the joined callers were told the same: the retries spent or an outcome
        unknown (for every call), a lone write's refusal (its own: the calls that joined an
        earlier attempt were never applied, and wait first in line for the next group) or an
        interrupt. A statement PostgreSQL refuses fails the whole transaction: every call then
        runs again alone, so it fails only the call that caused it."""
        joined: list[_Waiter] = []
        took = False  # whether this attempt took the joined calls (a retry may not)
        lone = calls[0] if len(calls) == 1 else None
        full = lone is not None and lone.oldest is not None and namespace in self._full
        carry = Carry(full=full)

        def join() -> list[GroupedWrite]:
            nonlocal took
            took = True
            self._join(namespace, joined, len(calls))
            return [w.call for w in joined]  # on a retry, those of the earlier attempts too

        def attempt() -> Plan[list[Outcome]]:
            nonlocal took, carry
            took = False
            if lone is not None:
                carry = Carry(full=full)  # each attempt starts afresh
                return (yield from lone_plan(lone, join, carry))
            return (yield from group_plan(calls, join))

        prefetch = lone.lone_reads(full) if lone is not None else None
        failed: BaseException | None = None
        try:
            outcomes: list[Outcome] = await self._run(attempt, prefetch)
        except BaseException as exc:
            failed = exc
        if not took:  # joined an earlier attempt, never applied: the next group's
            self._requeue(namespace, joined)
            joined = []
        if failed is None:
            if lone is not None and lone.oldest is not None:
                self._note_full(namespace, carry.full)
            if len(outcomes) > 1:
                self.groups += 1
                self.writes += len(outcomes)
        elif isinstance(failed, BotWireError) or not isinstance(failed, Exception):
            settle([w.future for w in joined], [as_exception(failed)] * len(joined))
            raise failed
        else:  # PostgreSQL refused a statement: find whose, one at a time
            outcomes = [await self._alone(c) for c in [*calls, *(w.call for w in joined)]]
        settle([w.future for w in joined], outcomes[len(calls) :])
        return outcomes[: len(calls)]

    def _note_full(self, namespace: str, full: bool) -> None:
        """Remember whether ``namespace`` keeps its 1,000 idempotency records (``lone_plan``),
        for the :data:`MAX_FULL` namespaces noted last."""
        self._full.pop(namespace, None)  # noted again: the newest
        if not full:
            return
        self._full[namespace] = None
        if len(self._full) > MAX_FULL:
            del self._full[next(iter(self._full))]

    def _requeue(self, namespace: str, joined: list[_Waiter]) -> None:
        """Put calls that joined a transaction that was not applied first in line again."""
        for waiter in joined:
            waiter.started = False
        self._waiting[namespace][:0] = joined

    def _join(self, namespace: str, joined: list[_Waiter], calls: int) -> None:
        """Take the calls waiting for ``namespace``'s write in flight (not those whose callers
        gave up) into its transaction of ``calls`` calls, up to ``MAX_GROUP`` in all."""
        waiting = self._waiting[namespace]
        room = MAX_GROUP - calls - len(joined)
        take = [w for w in waiting if not w.future.done()][: max(room, 0)]
        if not take:
            return
        for waiter in take:
            waiter.started = True
        taken = set(map(id, take))
        self._waiting[namespace] = [w for w in waiting if id(w) not in taken]
        joined.extend(take)

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.started and not waiter.future.done():
            waiter.future.set_exception(self._late(waiter.call.namespace, self._timeout))

    def _next(self, namespace: str) -> None:
        """The namespace's write is done: run the calls that waited for it (not those whose
        callers gave up meanwhile), or forget it."""
        waiting = [w for w in self._waiting[namespace] if not w.future.done()]
        if not waiting:
            del self._waiting[namespace]
            return
        group, self._waiting[namespace] = waiting[:MAX_GROUP], waiting[MAX_GROUP:]
        for waiter in group:
            waiter.started = True
        task = asyncio.get_running_loop().create_task(self._group(namespace, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _group(self, namespace: str, group: list[_Waiter]) -> None:
        calls = [w.call for w in group]
        futures = [w.future for w in group]
        try:
            outcomes = await self._outcomes(calls)
        except BaseException as exc:  # cancelled (the loop is closing): no caller waits on
            settle(futures, [as_exception(exc)] * len(calls))
            self._next(namespace)
            raise
        # The next group first: its transaction starts while these callers are answered.
        self._next(namespace)
        settle(futures, outcomes)

    async def _outcomes(self, calls: list[GroupedWrite]) -> list[Outcome]:
        try:
            return await self._transaction(calls[0].namespace, calls)
        except BotWireError as exc:  # refused (a lone call), retries spent, outcome unknown
            return [exc] * len(calls)

    async def _alone(self, call: GroupedWrite) -> Outcome:
        try:
            results: Results = await self._run(call.alone, call.prefetch)
            return results
        except Exception as exc:
            return exc

    async def wait(self) -> None:
        """Until the groups in flight are done (closing the reader)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
