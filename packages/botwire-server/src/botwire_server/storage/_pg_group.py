"""Which of the event loop's writes to PostgreSQL share a transaction (issue 22); how each
transaction runs its calls is ``_pg_plans``.

The writes of one namespace are serialized by its statistics row's lock (``docs/design.md``
§6): while one is in flight, the next can only wait for that ``COMMIT``, holding a connection.
So a write that finds another write of its namespace in flight on this replica joins the
namespace's next *group* instead (at most ``MAX_GROUP``, 32, calls), and when the write in
flight is done the group runs as one transaction (``_pg_plans.group_plan``):

- one call's refusal undoes only its own changes;
- one ``COMMIT`` (one WAL flush) for all, and every caller is answered after it, never before;
- a database error that is not retried (a statement PostgreSQL refuses) has failed the whole
  transaction: its calls then run again one at a time, so it fails only the call that caused
  it. Retries and lost connections are the single write's (``AsyncPgReader._write``): the group
  runs again whole, or, when its ``COMMIT`` may have been sent, every caller learns the outcome
  is unknown.

A lone write runs at once, as before: grouping adds no wait, only fewer transactions. The
writes that arrive while a transaction's first round trip is in flight **join it** instead of
waiting for its ``COMMIT``: three round trips and one WAL flush for all, where they cost a
transaction of their own after it (LangGraph's ``put_writes`` and ``put`` of a step arrive
together and write one namespace; traced under P10, four in five of the writes that found one
in flight arrived during its first round trip; under P3's load nearly every write finds a
*group* in flight). A lone write's refusal rolls it back before anyone joined; if a transaction
is tried again, the calls that joined run in it again, and if this time they cannot join (the
lone write, or all of a group, refused) they wait first in line for the next group, never
applied meanwhile (``_transaction``). Versions stay in commit order: the calls allocate theirs
in the order they run, inside the transaction, behind the lock.

When a transaction is done, its namespaces' next groups are *launched* (``_launch``) before its
callers are answered: their first statements reach PostgreSQL while the answers are written
(measured, 6 processes adding chat messages to one session: 1,235 -> 1,412 adds/s, medians of 7
runs). The launch runs at the loop's next turn and takes every group that became ready
meanwhile, i.e. those of the namespaces whose transactions ended in the same turn; several of
them share one transaction (``_pg_plans.multi_plan``, up to ``MAX_NAMESPACES``), which costs
the server two round trips and one transaction for all (measured under P3's load, 32 APPENDs
in flight over 8 namespaces: the server's CPU per APPEND 288 -> 181 µs). Nothing waits for it:
a group launched alone is launched exactly when it was before; it is the transactions ending
together under load that keep their namespaces together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from botwire._errors import BotWireError
from botwire.store._sqlctx import Carry
from botwire.store._sqlplan import Plan

from ._group import MAX_GROUP, as_exception, settle
from ._pg_plans import (
    MAX_NAMESPACES,
    GroupedWrite,
    Outcome,
    Results,
    group_plan,
    lone_plan,
    multi_plan,
)
from ._pg_write import Query

__all__ = ["GroupedWrite", "NamespaceGroups"]

#: namespaces remembered as keeping their 1,000 idempotency records (``NamespaceGroups``)
MAX_FULL = 4096

#: ``AsyncPgReader._write``: runs a fresh plan from the factory per attempt, in a transaction.
Run = Callable[[Callable[[], Plan[Any]], Sequence[Query] | None], Awaitable[Any]]


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
        #: namespaces whose next group is ready, gathered until the launch (``_next``)
        self._ready: list[tuple[str, list[_Waiter]]] = []
        self._launching = False
        #: namespaces whose last lone keyed write left them at their 1,000 records
        #: (``_note_full``), in the order noted
        self._full: dict[str, None] = {}
        #: transactions that ran more than one call, and the calls in them (``/metrics``, as
        #: ``_group.WriteGroups``'s)
        self.groups = 0
        self.writes = 0
        #: transactions that ran the groups of several namespaces (``_multi``), and the
        #: namespaces in them (``/metrics``)
        self.shared = 0
        self.shared_namespaces = 0

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
        self._ready.append((namespace, group))
        if not self._launching:
            self._launching = True
            self._spawn(self._launch())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _launch(self) -> None:
        """The groups that became ready since the launch was asked for (the namespaces whose
        transactions ended in the same turn of the loop): those of several namespaces share
        a transaction (``multi_plan``), up to :data:`MAX_NAMESPACES` each."""
        self._launching = False
        ready, self._ready = self._ready, []
        several = sorted((r for r in ready if r[1][0].call.locks), key=lambda r: r[0])
        if len(several) < 2:
            several = []
        runs = [several[i : i + MAX_NAMESPACES] for i in range(0, len(several), MAX_NAMESPACES)]
        runs += [[r] for r in ready if not several or not r[1][0].call.locks]
        for run in runs[1:]:
            self._spawn(self._group(run))
        await self._group(runs[0])

    async def _group(self, ready: list[tuple[str, list[_Waiter]]]) -> None:
        """The next groups of the namespaces of ``ready`` in one transaction (a namespace's
        own, or one they share): their callers answered, and the namespaces' next groups
        launched first."""
        futures = [w.future for _, group in ready for w in group]
        calls = [[w.call for w in group] for _, group in ready]
        try:
            if len(calls) > 1:
                outcomes = await self._multi_outcomes(calls)
            else:
                outcomes = await self._outcomes(calls[0])
        except BaseException as exc:  # cancelled (the loop is closing): no caller waits on
            settle(futures, [as_exception(exc)] * len(futures))
            for namespace, _ in ready:
                self._next(namespace)
            raise
        # The next groups first: their transactions start while these callers are answered.
        for namespace, _ in ready:
            self._next(namespace)
        settle(futures, outcomes)

    async def _multi_outcomes(self, calls: list[list[GroupedWrite]]) -> list[Outcome]:
        flat = [call for group in calls for call in group]
        try:
            outcomes: list[Outcome] = await self._run(lambda: multi_plan(calls), None)
        except BotWireError as exc:  # retries spent, outcome unknown
            return [exc] * len(flat)
        except Exception:  # PostgreSQL refused a statement: find whose, one at a time
            return [await self._alone(c) for c in flat]
        self.groups += 1
        self.writes += len(flat)
        self.shared += 1
        self.shared_namespaces += len(calls)
        return outcomes

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
