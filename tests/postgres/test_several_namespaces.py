"""The next groups of several namespaces share one transaction (``_pg_plans.multi_plan``,
``NamespaceGroups._launch``, issue 22): their rows locked by one statement in name order, each
namespace's statistics, reads and versions in the same round trip, every call on its held lock.

The attack: a namespace's answers and state must be exactly those of its calls run one after
the other, whatever the others in the transaction do: a namespace's first write (no row to lock
yet), a first call refused, a call that changes what nobody tracks, quotas, idempotency keys
retried, a statement PostgreSQL refuses, a lost ``COMMIT``, a retried transaction, two replicas
locking the same namespaces; and a refused write must leave no namespace row behind.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from botwire import Conflict, Limits, Unavailable
from botwire.store import Op
from botwire_server.storage._pg_async import AsyncPgReader
from botwire_server.storage._pg_group import NamespaceGroups
from botwire_server.storage._pg_write import AsyncPgTx
from botwire_server.storage.postgres import PostgresStore
from tests.postgres.test_group_carry import (
    Call,
    _compare,
    _one_by_one,
    _seven_digit_versions,
    random_calls,
)
from tests.postgres.test_write_groups import (
    _commit_then_lose,
    _fail_send,
    _poison_trigger,
    _serialization_failure,
)
from tests.support.postgres import async_writer, record_locks

pytestmark = pytest.mark.postgres
_SEND = AsyncPgTx.send  # the real one, before any test patches it


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


def _names(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"several-{tag}-{i}" for i in range(n)]


async def _together(w: Any, calls: dict[str, list[Call]]) -> dict[str, list[Any]]:
    """``calls`` of each namespace as the next groups of those namespaces, in one transaction
    (what ``NamespaceGroups._launch`` runs when they become ready together): every outcome."""
    names = sorted(calls)
    grouped = [[w.grouped(ns, ops, at, k) for ops, at, k in calls[ns]] for ns in names]
    got = iter(await w.groups._multi_outcomes(grouped))
    return {ns: [next(got) for _ in calls[ns]] for ns in names}


def _row_count(store: PostgresStore, ns: str) -> int:
    row = store._statement(
        lambda tx: tx.one("SELECT count(*) FROM bw_namespaces WHERE ns = ?", (ns,))
    )
    return int(row[0])


def _count_alone(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The calls run one at a time after their transaction failed (``NamespaceGroups._alone``)."""
    calls: list[Any] = []
    alone = NamespaceGroups._alone

    async def spy(self: NamespaceGroups, call: Any) -> Any:
        calls.append(call)
        return await alone(self, call)

    monkeypatch.setattr(NamespaceGroups, "_alone", spy)
    return calls


def _count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]

    async def spy(self: AsyncPgTx, **options: Any) -> Any:
        if self._queue:
            count[0] += 1
        return await _SEND(self, **options)

    monkeypatch.setattr(AsyncPgTx, "send", spy)
    return count


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "limits",
    [Limits(), Limits(max_keys=4), Limits(max_namespace_bytes=400)],
    ids=["unlimited", "max_keys", "max_bytes"],
)
@pytest.mark.parametrize("binding", ["prepared", "literals"])
def test_several_namespaces_answer_as_each_ones_calls_one_after_the_other(
    postgres_url: str, seed: int, limits: Limits, binding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four namespaces in one transaction (the first never written before: no row to lock),
    each with random calls (refusals, deletes, non-atomic batches, retried keys), against
    the same calls one after the other on four others: the same answers and the same state,
    and the transaction never fell back to running its calls one at a time. ``literals``:
    as behind a transaction-mode pooler (``prepare_threshold=None``: one simple query a send,
    its parameters as literals)."""
    options: dict[str, Any] = {"prepare_threshold": None} if binding == "literals" else {}
    together_ns, alone_ns = _names(4), _names(4)
    fell_back = _count_alone(monkeypatch)
    calls = {ns: random_calls(seed * 10 + i, 6) for i, ns in enumerate(together_ns)}

    async def main() -> None:
        async with async_writer(postgres_url, limits=limits, **options) as (w, store):
            _seven_digit_versions(store)
            for ns in [*together_ns[1:], *alone_ns[1:]]:  # rows exist, but the first's
                await w.batch(ns, [Op("set", "seed", value='"s"')])
            together = await _together(w, calls)
            for t, a in zip(together_ns, alone_ns, strict=True):
                alone = await _one_by_one(w, a, calls[t])
                _compare(store, t, a, calls[t], together[t], alone)

    run(main)
    assert fell_back == []


def test_a_transaction_of_several_namespaces_is_two_round_trips(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five namespaces, four appends and an incr each: one round trip for every lock, read and
    version, one for the writes and the ``COMMIT``; no namespace row upserted (only locked)."""
    names = _names(5)
    calls: dict[str, list[Call]] = {
        ns: [([Op("append", "log", items=(f'"m{i}"',))], True, None) for i in range(4)]
        + [([Op("incr", "n", by=2)], True, f"key-{ns}")]
        for ns in names
    }

    async def main() -> tuple[dict[str, list[Any]], int, list[bool], dict[str, Any]]:
        async with async_writer(postgres_url) as (w, store):
            for ns in names:
                await w.batch(ns, [Op("set", "seed", value="1")])
            locks = record_locks(monkeypatch, names[2])
            sends = _count_sends(monkeypatch)
            got = await _together(w, calls)
            return got, sends[0], locks, {ns: store.get(ns, "log").value for ns in names}

    got, sends, locks, logs = run(main)
    assert sends == 2
    # the first call reads the row the transaction locked (never upserted); the others not even
    # that (what the first left known is handed on)
    assert locks == [True]
    for ns in names:
        assert [r[0]["length"] for r in got[ns][:4]] == [1, 2, 3, 4]
        assert got[ns][4][0]["value"] == 2
        assert logs[ns] == [f"m{i}" for i in range(4)]
        versions = [r[0]["version"] for r in got[ns]]
        assert versions == sorted(set(versions))


def test_a_refused_write_leaves_no_row_and_writes_no_row_version(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new namespace whose only call is refused, and an existing one whose only call is
    refused, share a transaction with a third that writes: the new namespace has no row after
    (as alone, where its lock's upsert is undone with it) and the existing row is the very
    same version (locked, not rewritten)."""
    new, old, busy = sorted(_names(3))

    def xmin(store: PostgresStore) -> Any:
        return store._statement(
            lambda tx: tx.one("SELECT xmin::text FROM bw_namespaces WHERE ns = ?", (old,))
        )

    async def main() -> tuple[dict[str, list[Any]], Any, Any, int, Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(old, [Op("set", "k", value="1")])
            await w.batch(busy, [Op("set", "k", value="1")])
            before = xmin(store)
            refused: list[Call] = [([Op("set", "k", value="2", if_version=999999)], True, None)]
            got = await _together(
                w, {new: refused, old: refused, busy: [([Op("incr", "k")], True, None)]}
            )
            return got, before, xmin(store), _row_count(store, new), store.get(old, "k").value

    fell_back = _count_alone(monkeypatch)
    got, before, after, new_rows, old_value = run(main)
    assert fell_back == []
    assert isinstance(got[new][0], Conflict) and isinstance(got[old][0], Conflict)
    assert got[busy][0][0]["value"] == 2
    assert new_rows == 0
    assert before == after
    assert old_value == 1


def test_a_statement_postgres_refuses_fails_only_its_call(fresh_postgres_url: str) -> None:
    """A trigger refuses the key ``poison`` in one namespace: the shared transaction fails, its
    calls run again one at a time, and only that call fails, in every namespace."""
    names = _names(3)
    _poison_trigger(fresh_postgres_url)
    calls: dict[str, list[Call]] = {
        ns: [([Op("append", "log", items=(f'"m{i}"',))], True, None) for i in range(3)]
        for ns in names
    }
    calls[names[1]].insert(1, ([Op("set", "poison", value="1")], True, None))

    async def main() -> tuple[dict[str, list[Any]], list[Any]]:
        async with async_writer(fresh_postgres_url) as (w, store):
            for ns in names:
                await w.batch(ns, [Op("set", "seed", value="1")])
            got = await _together(w, calls)
            return got, [store.get(ns, "log").value for ns in names]

    got, logs = run(main)
    errors = [r for outs in got.values() for r in outs if isinstance(r, Exception)]
    assert len(errors) == 1 and "refused by a trigger" in str(errors[0]), got
    assert isinstance(got[names[1]][1], Exception)
    assert logs == [["m0", "m1", "m2"]] * 3


@pytest.mark.parametrize("fault", ["commit lost", "serialization failure"])
def test_a_shared_transaction_is_retried_whole_or_every_caller_told(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The connection is lost once the ``COMMIT`` left: every caller of every namespace is told
    the outcome is unknown, and it was applied once. A serialization failure in the first
    round trip: the transaction runs again whole, and every write is applied once."""
    names = _names(3)
    calls = {
        ns: [([Op("append", "log", items=(f'"m{i}"',))], True, f"{ns}-m{i}") for i in range(3)]
        for ns in names
    }

    async def main() -> tuple[dict[str, list[Any]], list[Any]]:
        async with async_writer(postgres_url) as (w, store):
            for ns in names:
                await w.batch(ns, [Op("set", "seed", value="1")])
            if fault == "commit lost":
                _fail_send(monkeypatch, 2, _commit_then_lose)
            else:
                _fail_send(monkeypatch, 1, _serialization_failure)
            got = await _together(w, calls)
            return got, [store.get(ns, "log").value for ns in names]

    got, logs = run(main)
    outcomes = [r for outs in got.values() for r in outs]
    if fault == "commit lost":
        assert all(isinstance(r, Unavailable) for r in outcomes), outcomes
    else:
        assert not any(isinstance(r, Exception) for r in outcomes), outcomes
    assert logs == [["m0", "m1", "m2"]] * 3  # applied, once


def test_namespaces_whose_transactions_end_together_share_the_next(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes wait for their namespaces' writes in flight; the two transactions in flight end
    in the same turn of the loop: the two namespaces' next groups run as one transaction, and
    a namespace whose next group starts with a call that takes no lock (a check) runs its own."""
    a, b, c = sorted(_names(3))
    shared: list[int] = []
    multi = NamespaceGroups._multi_outcomes

    async def spy(self: NamespaceGroups, calls: list[Any]) -> Any:
        shared.append(len(calls))
        return await multi(self, calls)

    monkeypatch.setattr(NamespaceGroups, "_multi_outcomes", spy)

    async def main() -> tuple[list[Any], list[Any]]:
        async with async_writer(postgres_url) as (w, store):
            for ns in (a, b, c):
                await w.batch(ns, [Op("set", "n", value="0")])
            groups = w.groups
            for ns in (a, b, c):  # as if a write of each were in flight
                groups._waiting[ns] = []
            tasks = [asyncio.ensure_future(w.batch(ns, [Op("incr", "n")])) for ns in (a, b, a, b)]
            tasks.append(asyncio.ensure_future(w.batch(c, [Op("check", "absent", version=None)])))
            tasks.append(asyncio.ensure_future(w.batch(c, [Op("incr", "n")])))
            await asyncio.sleep(0.05)  # every call waits for its namespace
            assert not any(t.done() for t in tasks)
            for ns in (a, b, c):  # the writes in flight end in the same turn
                groups._next(ns)
            got = list(await asyncio.gather(*tasks))
            return got, [store.get(ns, "n").value for ns in (a, b, c)]

    got, values = run(main)
    assert shared == [2]
    assert [r[0]["value"] for r in got[:4]] == [1, 1, 2, 2]
    assert not isinstance(got[4], Exception) and got[5][0]["value"] == 1
    assert values == [2, 2, 1]


def test_two_replicas_locking_the_same_namespaces_never_deadlock(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas run shared transactions over random, overlapping sets of the same six
    namespaces at once, handed in opposite orders: the row locks are taken in name order, so
    PostgreSQL never finds a deadlock (which the write would retry: no retry at all); nor do two
    transactions write one namespace at once (a unique violation, run again call by call), and
    every append lands once."""
    names = _names(6)
    rng = random.Random(7)
    retried: list[str] = []
    again = AsyncPgReader._again

    async def spy(self: AsyncPgReader, retry: Any, exc: Exception, *args: Any) -> None:
        retried.append(type(exc).__name__)
        await again(self, retry, exc, *args)

    monkeypatch.setattr(AsyncPgReader, "_again", spy)
    fell_back = _count_alone(monkeypatch)

    async def replica(w: Any, tag: str, reverse: bool) -> int:
        sent = 0
        for round_ in range(30):
            chosen = sorted(rng.sample(names, rng.randint(2, 6)), reverse=reverse)
            grouped = [
                [w.grouped(ns, [Op("append", "log", items=(f'"{tag}{round_}"',))], True, None)]
                for ns in chosen
            ]
            outcomes = await w.groups._multi_outcomes(grouped)
            assert not any(isinstance(o, Exception) for o in outcomes), outcomes
            sent += len(chosen)
        return sent

    async def main() -> tuple[int, int]:
        async with async_writer(postgres_url) as (w1, store), async_writer(postgres_url) as (w2, _):
            for ns in names:
                await w1.batch(ns, [Op("set", "log", value="[]")])
            one, two = await asyncio.gather(replica(w1, "a", False), replica(w2, "b", True))
            return one + two, sum(len(store.get(ns, "log").value) for ns in names)

    sent, landed = run(main)
    assert retried == [] and fell_back == []
    assert landed == sent


def test_a_retry_whose_record_the_first_call_shed_applies_again(postgres_url: str) -> None:
    """A namespace's first call in the shared transaction makes it outgrow
    ``max_namespace_bytes``, so its oldest record goes (untracked: nothing is handed on); a
    retry of that record's request after it must apply again, as waiting its turn, not replay
    the record read ahead with the locks before it went."""
    together_ns, alone_ns = _names(2), _names(2)
    retry = [Op("set", "a", value='"x"')]
    value = '"' + "v" * 40 + '"'

    async def main() -> None:
        async with async_writer(postgres_url) as (w, store):
            _seven_digit_versions(store)
            for ns in [*together_ns, *alone_ns]:
                await w.batch(ns, retry, idempotency_key="K")
            used = store.usage(together_ns[0]).bytes
        # room for the data and the new answer only once K's answer (21 bytes) is gone
        cap = used + (1 + len(value)) + 21 - 1
        calls: list[Call] = [([Op("set", "m", value=value)], True, "L"), (retry, True, "K")]
        other: list[Call] = [([Op("incr", "n")], True, None)]
        async with async_writer(postgres_url, limits=Limits(max_namespace_bytes=cap)) as (w, store):
            got = await _together(w, {together_ns[0]: calls, together_ns[1]: other})
            one = await _one_by_one(w, alone_ns[0], calls)
            assert isinstance(one[1], list) and one[1][0]["version"] > one[0][0]["version"]
            _compare(store, together_ns[0], alone_ns[0], calls, got[together_ns[0]], one)

    run(main)


def test_at_the_record_cap_each_namespace_drops_its_oldest_by_key(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two namespaces at 1,000 idempotency records share a transaction of keyed writes: each
    call drops its namespace's oldest record by key (read ahead with the locks), a retry of a
    dropped record's request applies again and one still kept replays, and the transaction
    stays two round trips."""
    together_ns, alone_ns = _names(2), _names(2)
    fill = [Op("incr", "c", by=1)]
    calls: list[Call] = [
        ([Op("append", "chat", items=(f'"m{i}"',))], True, f"m{i}") for i in range(4)
    ]
    calls += [(fill, True, "f0001"), (fill, True, "f0500")]

    async def main() -> int:
        async with async_writer(postgres_url) as (w, store):
            _seven_digit_versions(store)
            for ns in [*together_ns, *alone_ns]:
                for i in range(1000):
                    await w.batch(ns, fill, idempotency_key=f"f{i:04d}")
            sends = _count_sends(monkeypatch)
            got = await _together(w, dict.fromkeys(together_ns, calls))
            count = sends[0]
            for t, a in zip(together_ns, alone_ns, strict=True):
                one = await _one_by_one(w, a, calls)
                _compare(store, t, a, calls, got[t], one, frozenset({"f0500"}))
                assert got[t][4][0]["value"] == 1001  # f0001's record was dropped: applied again
                assert got[t][5][0]["value"] == 501  # f0500's is kept: replayed
            return count

    assert run(main) == 2
