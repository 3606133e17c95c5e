"""Concurrent writes of one namespace share a transaction on the event loop (``_pg_group``,
issue 22): each call in its savepoint, one ``COMMIT``. Every caller must get the answer it would
have got waiting its turn, a refusal must undo only its own call, a statement PostgreSQL refuses
must fail only the call that sent it, a retried key must apply once, and a caller that gives up
must not withdraw a write already accepted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from botwire import Conflict, Limits, QuotaExceeded, Unavailable
from botwire.store import Op
from botwire_server.storage._pg_write import AsyncPgTx
from botwire_server.storage.postgres import PostgresStore
from tests.support.postgres import async_writer, in_three_waves, record_locks

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("joining")]
_SEND = AsyncPgTx.send  # the real one, before any test patches it


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


def _ns() -> str:
    return f"groups-{uuid.uuid4().hex[:10]}"


def test_concurrent_writes_answer_as_if_each_waited_its_turn(postgres_url: str) -> None:
    ns = _ns()

    async def main() -> tuple[list[Any], list[Any], Any]:
        async with async_writer(postgres_url) as (w, store):
            appends = [w.batch(ns, [Op("append", "log", items=(f'"m{i}"',))]) for i in range(40)]
            incrs = [w.batch(ns, [Op("incr", "n", by=1)]) for _ in range(40)]
            results = await asyncio.gather(*appends, *incrs)
            return results, [w.groups.groups, w.groups.writes], store.get(ns, "log")

    results, (groups, grouped), log = run(main)
    lengths = sorted(r[0]["length"] for r in results[:40])
    values = sorted(r[0]["value"] for r in results[40:])
    assert lengths == list(range(1, 41)) and values == list(range(1, 41))
    assert sorted(log.value) == sorted(f"m{i}" for i in range(40))
    versions = [r[0]["version"] for r in results]
    assert len(set(versions)) == 80
    # the list's order is the order the appends ran in, which is their versions' order
    by_version = [r[0]["length"] for r in sorted(results[:40], key=lambda r: r[0]["version"])]
    assert by_version == list(range(1, 41))
    print(f"\nFIGURE 80 concurrent writes to one namespace ran in {groups} groups of {grouped}")
    assert groups >= 1 and grouped >= 2


def test_a_refusal_undoes_only_its_own_call(postgres_url: str) -> None:
    ns = _ns()

    async def main() -> tuple[list[Any], Any]:
        async with async_writer(postgres_url, limits=Limits(max_keys=5)) as (w, store):
            await w.batch(ns, [Op("set", "first", value="0")])
            calls = [
                w.batch(ns, [Op("set", "once", value=str(i), if_absent=True)]) for i in range(8)
            ]
            calls += [w.batch(ns, [Op("set", f"k{i}", value="1")]) for i in range(8)]
            calls += [w.batch(ns, [Op("append", "first-list", items=('"x"',))]) for _ in range(4)]
            got = await asyncio.gather(*calls, return_exceptions=True)
            return got, (store.usage(ns), store.get(ns, "first-list"))

    got, (usage, listed) = run(main)
    once, sets, appends = got[:8], got[8:16], got[16:]
    assert sum(not isinstance(r, Exception) for r in once) == 1
    assert all(isinstance(r, Conflict) for r in once if isinstance(r, Exception))
    refused = [r for r in sets + appends if isinstance(r, Exception)]
    assert refused and all(isinstance(r, QuotaExceeded) for r in refused), refused
    # 5 keys at most, whatever order the groups ran the calls in: "first", "once", the sets
    # that fit and the list if its first append fit; the refused left nothing behind
    stored_sets = sum(not isinstance(r, Exception) for r in sets)
    assert usage.keys == 5 == 2 + stored_sets + (listed is not None)
    if listed is not None:  # created once; every later append that fit landed in it
        assert len(listed.value) == sum(not isinstance(r, Exception) for r in appends)


def test_calls_after_an_applied_one_only_read_the_lock_their_transaction_holds(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a call of a group was applied, the transaction holds the namespace lock: the calls
    after it do not upsert it again (they are handed the statistics it saved, ``Carry``; or
    read the row, ``held``, once what was handed on is lost: ``test_group_carry``). A refused
    call does not count: its rollback released the lock it took (and the row it created, on a
    new namespace), so the next call takes the lock again."""
    ns = _ns()
    locks = record_locks(monkeypatch, ns)

    async def main() -> tuple[list[Any], int, Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            refused = Op("set", "k", value="1", if_version=999)
            # the first call runs alone; the eight after it wait for it and form one group
            calls = [w.batch(ns, [refused]), w.batch(ns, [refused])]
            calls.append(w.batch(ns, [Op("check", "n", version=None)]))  # takes no lock
            calls += [w.batch(ns, [Op("incr", "n", by=1)]) for _ in range(6)]
            got = await asyncio.gather(*calls, return_exceptions=True)
            return got, w.groups.writes, store.get(ns, "n"), store.usage(ns)

    got, grouped, n, usage = run(main)
    assert isinstance(got[0], Conflict) and isinstance(got[1], Conflict)
    assert got[2] == [{"ok": True}], got[2]
    assert sorted(r[0]["value"] for r in got[3:]) == list(range(1, 7))
    assert n is not None and n.value == 6 and usage.keys == 1
    assert grouped == 8
    # alone: takes it; the group: the refused call takes it, the check takes none, the first
    # incr takes it again, the five after it are handed what it saved
    assert locks == [False, False, False]


def test_a_refused_call_on_the_held_lock_is_undone_whether_its_writes_left_or_not(
    postgres_url: str, sent: list[str], joining: str
) -> None:
    """On the lock its transaction holds, a call gets no savepoint up front: refused while its
    writes are still queued, they are dropped; refused after they had to leave (a read it had
    not prefetched: the purge ``max_keys`` runs), they are rolled back to the savepoint put
    before them when they left. Either way only that call is undone."""
    ns = _ns()

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(postgres_url, limits=Limits(max_keys=3)) as (w, store):
            calls = [
                w.batch(ns, [Op("set", "a", value="1")]),  # alone
                w.batch(ns, [Op("set", "b", value="2")]),  # the group's first: takes the lock
                # refused by its second op while its first op's writes are still queued
                w.batch(ns, [Op("set", "x", value="9"), Op("set", "b", value="3", if_absent=True)]),
                w.batch(ns, [Op("set", "c", value="4")]),
                w.batch(ns, [Op("set", "d", value="5")]),  # refused after a read: 4 keys
                w.batch(ns, [Op("incr", "a", by=10)]),
            ]
            got = await asyncio.gather(*calls, return_exceptions=True)
            found = {k: store.get(ns, k) for k in "abcdx"}
            return got, {k: e.value if e else None for k, e in found.items()}, store.usage(ns)

    got, values, usage = run(main)
    assert isinstance(got[2], Conflict) and isinstance(got[4], QuotaExceeded), got
    assert got[5][0]["value"] == 11
    assert values == {"a": 11, "b": 2, "c": 4, "d": None, "x": None} and usage.keys == 3
    group = [q for q in sent if q.count("bw_req") > 0]
    statements = "; ".join(group).split("; ")
    # the group's first call's savepoint (joined to the lone "a", "b" is on its held lock and
    # needs none), and the one put before the refused "d" as it read
    first = 1 if joining == "group" else 0
    assert statements.count("SAVEPOINT bw_req") == first + 1, group
    assert statements.count("ROLLBACK TO SAVEPOINT bw_req") == 1, group
    assert statements.count("RELEASE SAVEPOINT bw_req") == first + 1, group


def test_a_held_call_that_reads_mid_plan_reads_its_own_rows(postgres_url: str) -> None:
    """A call on the held lock that reads what it had not prefetched (a delete after a check of
    the same key loads it again) gets its savepoint put in before that read: the read must
    still answer its own rows (a queue's ack left its claim counter behind when it did not)."""
    ns = _ns()

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            v = (await w.batch(ns, [Op("set", "k", value="1")]))[0]["version"]
            calls = [
                w.batch(ns, [Op("set", "a", value="1")]),  # alone
                w.batch(ns, [Op("set", "b", value="2")]),  # the group's first: takes the lock
                w.batch(ns, [Op("check", "k", version=v), Op("delete", "k")]),  # held, reads
            ]
            got = await asyncio.gather(*calls, return_exceptions=True)
            return got, store.get(ns, "k"), store.usage(ns)

    got, k, usage = run(main)
    assert got[2] == [{"ok": True}, {"deleted": True}], got[2]
    assert k is None and usage.keys == 2


def test_one_idempotency_key_twice_in_a_group_applies_once(postgres_url: str) -> None:
    ns = _ns()

    async def main() -> list[Any]:
        async with async_writer(postgres_url) as (w, _):
            await w.batch(ns, [Op("set", "n", value="0")])
            same = [w.batch(ns, [Op("incr", "n", by=1)], idempotency_key="retry") for _ in range(6)]
            other = [w.batch(ns, [Op("incr", "n", by=10)]) for _ in range(3)]
            return list(await asyncio.gather(*same, *other))

    got = run(main)
    assert len({r[0]["value"] for r in got[:6]}) == 1  # every retry answered the first result
    finals = sorted(r[0]["value"] for r in got)
    assert finals[-1] == 31  # one +1 and three +10


def _poison_trigger(url: str) -> None:
    """The schema, and a trigger that refuses the key ``poison`` (as PostgreSQL refuses a
    statement it cannot run)."""
    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.key = 'poison' THEN RAISE EXCEPTION 'refused by a trigger'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON bw_entries"
            " FOR EACH ROW EXECUTE FUNCTION poison()"
        )


def test_a_statement_postgres_refuses_fails_only_its_call(fresh_postgres_url: str) -> None:
    """A trigger refuses the key ``poison`` (as PostgreSQL would refuse a statement it cannot
    run): the group fails, and its calls run again one at a time, so only that call fails."""
    ns = _ns()
    _poison_trigger(fresh_postgres_url)

    async def main() -> tuple[list[Any], Any]:
        async with async_writer(fresh_postgres_url) as (w, store):
            first = w.batch(ns, [Op("set", "lead", value="1")])
            calls = [w.batch(ns, [Op("append", "log", items=(f'"m{i}"',))]) for i in range(6)]
            calls.insert(3, w.batch(ns, [Op("set", "poison", value="1")]))
            got = await asyncio.gather(first, *calls, return_exceptions=True)
            return list(got), (store.get(ns, "log"), store.get(ns, "poison"), w.groups.groups)

    got, (log, poison, _) = run(main)
    errors = [r for r in got if isinstance(r, Exception)]
    assert len(errors) == 1 and "refused by a trigger" in str(errors[0]), got
    assert poison is None and sorted(log.value) == [f"m{i}" for i in range(6)]


def test_a_caller_that_gives_up_before_its_group_starts_withdraws_its_write(
    postgres_url: str,
) -> None:
    ns = _ns()

    async def main() -> tuple[bool, Any]:
        async with async_writer(postgres_url) as (w, store):
            lead = asyncio.ensure_future(w.batch(ns, [Op("set", "lead", value="1")]))
            await asyncio.sleep(0)
            waiting = [
                asyncio.ensure_future(w.batch(ns, [Op("append", "log", items=(f'"m{i}"',))]))
                for i in range(5)
            ]
            await asyncio.sleep(0)  # all five wait for the lead's transaction
            waiting[2].cancel()
            await asyncio.gather(lead, *waiting, return_exceptions=True)
            await w.groups.wait()
            return waiting[2].cancelled(), store.get(ns, "log")

    cancelled, log = run(main)
    assert cancelled
    assert sorted(log.value) == ["m0", "m1", "m3", "m4"]


def test_a_write_that_waits_too_long_is_refused_and_never_applied(postgres_url: str) -> None:
    """The namespace is stuck (another session holds its lock): the write in flight waits for
    PostgreSQL, and those queued behind it are answered ``Unavailable`` after the store's
    ``timeout``, as a write waiting for a pooled connection was, and are never applied."""
    ns = _ns()
    PostgresStore(postgres_url).close()

    async def main() -> tuple[list[Any], Any]:
        async with async_writer(postgres_url, timeout=0.5) as (w, store):
            await w.batch(ns, [Op("set", "lead", value="0")])
            with psycopg.connect(postgres_url) as blocker:
                blocker.execute("SELECT 1 FROM bw_namespaces WHERE ns = %s FOR UPDATE", (ns,))
                lead = asyncio.ensure_future(w.batch(ns, [Op("set", "lead", value="1")]))
                await asyncio.sleep(0.05)
                queued = [
                    asyncio.ensure_future(w.batch(ns, [Op("set", f"late{i}", value="1")]))
                    for i in range(3)
                ]
                # bounded: without the timeout they would wait for the blocker, which waits
                got = await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 30)
                blocker.rollback()
            got.append(await lead)
            await w.groups.wait()
            return list(got), [store.get(ns, f"late{i}") for i in range(3)]

    got, late = run(main)
    assert all(isinstance(r, Unavailable) for r in got[:3]), got
    assert "waited" in str(got[0]) and ns in str(got[0])
    assert got[3][0]["version"] > 0
    assert late == [None, None, None]


# -- joining a lone write's transaction: its failures (``NamespaceGroups._lone``) --------------


def _fail_send(
    monkeypatch: pytest.MonkeyPatch, number: int, fault: Callable[[AsyncPgTx], Awaitable[Any]]
) -> list[int]:
    """From now on, the ``number``-th send of the event loop's writes runs ``fault(tx)``
    instead (once); returns the count of sends so far."""
    count = [0]
    send = AsyncPgTx.send

    async def spy(self: AsyncPgTx, **options: Any) -> Any:
        if self._queue:
            count[0] += 1
            if count[0] == number:
                return await fault(self)
        return await send(self, **options)

    monkeypatch.setattr(AsyncPgTx, "send", spy)
    return count


def _changed_before_the_retry(
    other: PostgresStore, ns: str
) -> Callable[[AsyncPgTx], Awaitable[Any]]:
    """A send fault: the transaction is rolled back, another replica (``other``) sets ``k``
    to 9, and the transaction fails with a serialization failure (so it is tried again)."""
    send = AsyncPgTx.send

    async def rollback_then_fail(tx: AsyncPgTx) -> Any:
        tx._queue = [(b"ROLLBACK", None)]
        await send(tx)
        await asyncio.to_thread(other.batch, ns, [Op("set", "k", value="9")])
        raise psycopg.errors.SerializationFailure("injected: could not serialize access")

    return rollback_then_fail


async def _commit_then_lose(tx: AsyncPgTx) -> Any:
    """A send fault: the batch (with its ``COMMIT``) leaves, then the connection is lost."""
    await _SEND(tx)
    raise psycopg.OperationalError("injected: server closed the connection")


def _appends(w: Any, ns: str, n: int) -> list[Awaitable[Any]]:
    return [
        w.batch(ns, [Op("append", "log", items=(f'"m{i}"',))], idempotency_key=f"m{i}")
        for i in range(n)
    ]


@pytest.mark.parametrize("joining", ["join"], indirect=True)
@pytest.mark.parametrize("joined", ["lone", "group"])
def test_joined_writes_outlive_a_retry_that_refuses_what_they_joined(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, joined: str
) -> None:
    """Writes joined a lone ``set ... if_version`` (or a group of two); the transaction fails
    (serialization) and, before the retry, another replica changes the key, so the retry
    refuses it (all of the group: the lock is not held for anyone to join). The joined writes
    were never applied: they run as the next group, each once, not lost with it."""
    ns = _ns()
    other = PostgresStore(postgres_url, notify=False)  # another server replica
    refused = 1 if joined == "lone" else 2

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            v = (await w.batch(ns, [Op("set", "k", value="1")]))[0]["version"]
            fault = _changed_before_the_retry(other, ns)
            sets = [w.batch(ns, [Op("set", "k", value=str(i), if_version=v)]) for i in (2, 3)]
            if joined == "lone":
                _fail_send(monkeypatch, 2, fault)
                calls = asyncio.gather(sets[0], *_appends(w, ns, 5), return_exceptions=True)
                got = await asyncio.wait_for(calls, 30)  # a call lost is never answered
                sets[1].close()
                await w.groups.wait()
                return list(got), store.get(ns, "k"), store.get(ns, "log")
            lone = w.batch(ns, [Op("set", "x", value="1")])
            got2, _ = await _three_waves(w, monkeypatch, lone, sets, _appends(w, ns, 5), (4, fault))
            return got2[1:], store.get(ns, "k"), store.get(ns, "log")

    try:
        got, k, log = run(main)
    finally:
        other.close()
    assert all(isinstance(r, Conflict) for r in got[:refused]), got
    assert k is not None and k.value == 9
    assert log is not None and sorted(log.value) == [f"m{i}" for i in range(5)]
    assert sorted(r[0]["length"] for r in got[refused:]) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("joining", ["join"], indirect=True)
def test_when_the_commit_of_a_joined_transaction_is_unknown_every_caller_is_told(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is lost right after the ``COMMIT`` of a lone write and the five that
    joined it left: nobody can know whether it committed, so all six callers are told so
    (their clients retry with their Idempotency-Keys), and nothing is run again."""
    ns = _ns()

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("set", "n", value="0")])
            _fail_send(monkeypatch, 3, _commit_then_lose)
            got = await asyncio.gather(
                w.batch(ns, [Op("incr", "n", by=1)]), *_appends(w, ns, 5), return_exceptions=True
            )
            return list(got), store.get(ns, "n"), store.get(ns, "log")

    got, n, log = run(main)
    assert all(isinstance(r, Unavailable) for r in got), got
    assert len({str(r) for r in got}) == 1, got
    # it did commit: applied once, never again
    assert n is not None and n.value == 1
    assert log is not None and log.value == [f"m{i}" for i in range(5)]


# -- joining a group's transaction: its failures (``NamespaceGroups._transaction``) -----------


async def _three_waves(
    w: Any,
    monkeypatch: pytest.MonkeyPatch,
    lone: Awaitable[Any],
    group: list[Awaitable[Any]],
    late: list[Awaitable[Any]],
    fault: tuple[int, Callable[[AsyncPgTx], Awaitable[Any]]],
) -> tuple[list[Any], int]:
    """:func:`~tests.support.postgres.in_three_waves`, the ``n``-th send running ``fault(tx)``
    instead (``fault``); every outcome, and the count of sends."""
    count = _fail_send(monkeypatch, *fault)
    got = await in_three_waves(monkeypatch, lone, group, late)
    await w.groups.wait()
    return got, count[0]


async def _serialization_failure(tx: AsyncPgTx) -> Any:
    raise psycopg.errors.SerializationFailure("injected: could not serialize access")


@pytest.mark.parametrize("joining", ["join"], indirect=True)
@pytest.mark.parametrize("joined", ["lone", "group"])
def test_a_transaction_others_joined_is_retried_with_them(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, joined: str
) -> None:
    """A serialization failure of the send that carries the joined calls' reads (with the
    writes of the lone write, or of the group, they joined): the retry runs them all again,
    and each is applied once."""
    ns = _ns()

    async def main() -> tuple[list[Any], Any, Any, int]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("set", "n", value="0")])
            calls = _appends(w, ns, 5)
            if joined == "lone":  # the lone write's lock, then its writes: the 2nd fails
                count = _fail_send(monkeypatch, 2, _serialization_failure)
                got = await asyncio.gather(w.batch(ns, [Op("incr", "n", by=1)]), *calls)
                return list(got), store.get(ns, "n"), store.get(ns, "log"), count[0]
            lone = w.batch(ns, [Op("incr", "n", by=1)])
            group = [w.batch(ns, [Op("incr", "n", by=1)]), *calls[:2]]
            # the lone write's two sends, the group's lock, then its writes: the 4th fails
            got2, sends = await _three_waves(
                w, monkeypatch, lone, group, calls[2:], (4, _serialization_failure)
            )
            return got2, store.get(ns, "n"), store.get(ns, "log"), sends

    got, n, log, sends = run(main)
    incrs = 1 if joined == "lone" else 2
    assert not [r for r in got if isinstance(r, Exception)], got
    # the failed attempt's sends (2), the retry's (3), after the lone write's (group: 2)
    assert sends == (5 if joined == "lone" else 7), sends
    assert [r[0]["value"] for r in got[:incrs]] == list(range(1, incrs + 1)), got
    assert n is not None and n.value == incrs
    assert log is not None and log.value == [f"m{i}" for i in range(5)]
    assert [r[0]["length"] for r in got[incrs:]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("joining", ["join"], indirect=True)
def test_when_the_commit_of_a_group_others_joined_is_unknown_every_caller_is_told(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is lost right after the ``COMMIT`` of a group and the three that joined
    it left: all five callers are told the outcome is unknown, and nothing runs again."""
    ns = _ns()

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("set", "n", value="0")])
            calls = _appends(w, ns, 4)
            lone = w.batch(ns, [Op("incr", "n", by=1)])
            group = [w.batch(ns, [Op("incr", "n", by=1)]), calls[0]]
            got, _ = await _three_waves(
                w, monkeypatch, lone, group, calls[1:], (5, _commit_then_lose)
            )
            return got, store.get(ns, "n"), store.get(ns, "log")

    got, n, log = run(main)
    assert got[0][0]["value"] == 1, got
    assert all(isinstance(r, Unavailable) for r in got[1:]), got
    assert len({str(r) for r in got[1:]}) == 1, got
    # it did commit: applied once, never again
    assert n is not None and n.value == 2
    assert log is not None and log.value == [f"m{i}" for i in range(4)]


@pytest.mark.parametrize("joining", ["join"], indirect=True)
def test_a_statement_postgres_refuses_in_a_joined_call_fails_only_that_call(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trigger refuses the key ``poison``, written by a call that joined a group: the group
    and the calls that joined it run again one at a time, so only that call fails."""
    ns = _ns()
    _poison_trigger(fresh_postgres_url)

    async def main() -> tuple[list[Any], Any, Any]:
        async with async_writer(fresh_postgres_url) as (w, store):
            calls = _appends(w, ns, 5)
            late = [*calls[2:4], w.batch(ns, [Op("set", "poison", value="1")]), calls[4]]
            lead = w.batch(ns, [Op("set", "lead", value="1")])
            got = await in_three_waves(monkeypatch, lead, calls[:2], late)
            return got, store.get(ns, "log"), store.get(ns, "poison")

    got, log, poison = run(main)
    errors = [r for r in got if isinstance(r, Exception)]
    assert len(errors) == 1 and "refused by a trigger" in str(errors[0]), got
    assert isinstance(got[5], Exception), got
    assert poison is None and log is not None and sorted(log.value) == [f"m{i}" for i in range(5)]
