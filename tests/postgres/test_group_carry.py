"""A group transaction's calls after the first read nothing they already know (``Carry``,
``_pg_group``, issue 22): the statistics and entries the earlier calls saved are handed on in
memory, every call's reads ride with the first lock and the versions are allocated behind it.

The attack: a call that answers from what it was handed instead of the database must answer
exactly what it would have answered waiting its turn, whatever the earlier calls did (refused,
partly rolled back, purged expired entries, dropped idempotency records, deleted keys). So each
test runs the same calls twice on one PostgreSQL: concurrently on one namespace (they form a
group) and one after the other on another (each alone), and compares every answer and the
state left.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from botwire import BotWireError, Conflict, Limits, QuotaExceeded
from botwire.store import Op
from botwire.store._sql import Engine
from botwire.store._sqlbase import EntryRow
from botwire.store._sqltext import load_query
from botwire_server.storage._pg_group import NamespaceGroups
from botwire_server.storage._pg_write import AsyncPgTx
from botwire_server.storage.postgres import PostgresStore
from tests.support.postgres import async_writer, in_three_waves, record_locks

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("joining")]

KEYS = ("a", "b", "c", "n", "l1", "l2")
Call = tuple[list[Op], bool, str | None]  # ops, atomic, idempotency key


KINDS = ("set", "set", "append", "append", "incr", "delete", "pop", "check")


def _op(rng: random.Random, versions: list[int], kinds: tuple[str, ...] = KINDS) -> Op:
    key = rng.choice(KEYS)
    kind = rng.choice(kinds)
    if kind == "set":
        cond: dict[str, Any] = rng.choice(
            [{}, {}, {"if_absent": True}, {"if_version": rng.choice(versions or [1])}]
        )
        return Op("set", key, value=f'"{rng.random():.6f}"', **cond)
    if kind == "append":
        max_len = rng.choice([None, None, 3])
        items = tuple(f'"i{rng.randrange(1000)}"' for _ in range(rng.randint(1, 3)))
        return Op("append", key, items=items, max_len=max_len)
    if kind == "incr":
        return Op("incr", key, by=rng.randint(1, 5))
    if kind == "delete":
        return Op("delete", key)
    if kind == "pop":
        return Op("pop", key)
    return Op("check", key, version=None)


def random_calls(seed: int, count: int, kinds: tuple[str, ...] = KINDS) -> list[Call]:
    rng = random.Random(seed)
    calls: list[Call] = []
    used: list[str] = []
    partial = "delete" in kinds  # non-atomic batches too
    for i in range(count):
        ops = [_op(rng, [], kinds) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        atomic = not partial or rng.random() < 0.7
        ikey: str | None = None
        if rng.random() < 0.5:
            # a few retries of an earlier call's key (the same request sent again)
            if used and rng.random() < 0.15:
                ikey = rng.choice(used)
                ops, atomic = next((c[0], c[1]) for c in calls if c[2] == ikey)
            else:
                ikey = f"k{seed}-{i}"
                used.append(ikey)
        calls.append((ops, atomic, ikey))
    return calls


def _outcome(got: Any, ranks: dict[int, int]) -> Any:
    """An answer with its versions as their rank among the namespace's (they differ by run)."""
    if isinstance(got, BotWireError):
        return (type(got).__name__, getattr(got, "key", None))
    if isinstance(got, BaseException):
        return ("raised", type(got).__name__, str(got))
    out = []
    for result in got:
        result = dict(result)
        if isinstance(result.get("version"), int):
            result["version"] = ranks.get(result["version"], "?")
        if isinstance(result.get("error"), dict):
            result["error"] = {"code": result["error"].get("code")}
        out.append(result)
    return out


def _state(store: PostgresStore, ns: str) -> tuple[Any, ...]:
    entries = {k: store.get(ns, k) for k in KEYS}
    usage = store.usage(ns)
    records = store._statement(
        lambda tx: tx.one("SELECT count(*) FROM bw_idempotency WHERE ns = ?", (ns,))
    )[0]
    saved = store._statement(
        lambda tx: tx.one("SELECT records FROM bw_namespaces WHERE ns = ?", (ns,))
    )
    return (
        {k: (e.value if e else None) for k, e in entries.items()},
        (usage.keys, usage.bytes, usage.writes_today),
        (records, saved[0] if saved else None),
    )


def _versions(got: list[Any]) -> list[int]:
    return [
        r["version"]
        for g in got
        if isinstance(g, list)
        for r in g
        if isinstance(r, dict) and isinstance(r.get("version"), int)
    ]


def _seven_digit_versions(store: PostgresStore) -> None:
    """Versions of as many digits in both runs: a kept answer's bytes count its versions'."""
    store._statement(
        lambda tx: tx.one("SELECT setval('bw_version', greatest(nextval('bw_version'), 1000000))")
    )


async def _both(w: Any, grouped: str, alone: str, calls: list[Call]) -> tuple[Any, Any]:
    together = await asyncio.gather(
        *(w.batch(grouped, ops, atomic=at, idempotency_key=k) for ops, at, k in calls),
        return_exceptions=True,
    )
    return together, await _one_by_one(w, alone, calls)


async def _one_by_one(w: Any, ns: str, calls: list[Call]) -> list[Any]:
    """Each call's outcome, run one after the other on ``ns``."""
    got: list[Any] = []
    for ops, at, k in calls:
        try:
            got.append(await w.batch(ns, ops, atomic=at, idempotency_key=k))
        except Exception as exc:
            got.append(exc)
    return got


async def _at_the_record_cap(w: Any, store: PostgresStore, *namespaces: str, fill: Any) -> None:
    """Each namespace at 1,000 idempotency records (``f0000`` .. ``f0999``, the writes
    ``fill``), written one after the other: the oldest are the same in each."""
    _seven_digit_versions(store)
    for ns in namespaces:
        for i in range(1000):
            await w.batch(ns, fill, idempotency_key=f"f{i:04d}")


async def _in_three_waves(
    w: Any, ns: str, calls: list[Call], group: int, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """``calls[0]`` alone, the next ``group`` as the next group, the rest joining it
    (:func:`~tests.support.postgres.in_three_waves`): every outcome."""
    batches = [w.batch(ns, ops, atomic=at, idempotency_key=k) for ops, at, k in calls]
    return await in_three_waves(
        monkeypatch, batches[0], batches[1 : 1 + group], batches[1 + group :]
    )


def _compare(
    store: PostgresStore,
    grouped: str,
    alone: str,
    calls: list[Call],
    together: Any,
    one: Any,
    replayed: frozenset[str] = frozenset(),
) -> None:
    ranks_g = {v: i for i, v in enumerate(sorted(set(_versions(together))))}
    ranks_a = {v: i for i, v in enumerate(sorted(set(_versions(one))))}
    for i, (g, a) in enumerate(zip(together, one, strict=True)):
        assert _outcome(g, ranks_g) == _outcome(a, ranks_a), f"call {i}: {g!r} vs {a!r}"
    assert _state(store, grouped) == _state(store, alone)
    # the versions of the calls applied (not replayed) follow the order the calls ran in
    seen: set[str | None] = set(replayed)  # answered from records kept before
    fresh = []
    for (_, _, ikey), got in zip(calls, together, strict=True):
        if ikey is None or ikey not in seen:
            fresh.append(got)
        seen.add(ikey)
    assert _versions(fresh) == sorted(_versions(fresh))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    "limits",
    [Limits(), Limits(max_keys=4), Limits(max_namespace_bytes=400)],
    ids=["unlimited", "max_keys", "max_bytes"],
)
def test_a_group_answers_as_the_calls_one_after_the_other(
    postgres_url: str, seed: int, limits: Limits
) -> None:
    calls = random_calls(seed, 30)
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"

    async def main() -> None:
        async with async_writer(postgres_url, limits=limits) as (w, store):
            _seven_digit_versions(store)
            together, one = await _both(w, grouped, alone, calls)
            assert w.groups.writes >= 20  # they did form groups
            _compare(store, grouped, alone, calls, together, one)

    asyncio.run(main())


def test_expired_entries_and_purges_in_a_group(postgres_url: str) -> None:
    """Entries expire between the set-up and the group; a call's purge (``max_keys``) removes
    rows of keys later calls touch, which they must then read again."""
    offset = [0.0]
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"
    setup = [Op("set", k, value='"old"', ttl=50) for k in ("a", "b")]
    setup += [Op("append", "l1", items=('"x"',), ttl=50), Op("set", "c", value='"kept"')]
    calls: list[Call] = [
        ([Op("set", "n", value='"1"')], True, None),  # the group's first
        ([Op("incr", "a", by=2)], True, None),  # loads an expired row: removes it
        ([Op("set", "x1", value='"1"'), Op("set", "x2", value='"2"')], True, "p1"),  # purges
        ([Op("append", "l1", items=('"y"',))], True, None),  # its row was purged
        ([Op("check", "b", version=None)], True, None),  # purged too: absent
        ([Op("set", "b", value='"new"', if_absent=True)], True, None),
        ([Op("incr", "a", by=1), Op("set", "c", value='"v"', if_version=1)], False, None),
        ([Op("pop", "l1")], True, "p2"),
    ]

    async def main() -> None:
        async with async_writer(
            postgres_url, limits=Limits(max_keys=5), clock_offset=lambda: offset[0]
        ) as (w, store):
            for ns in (grouped, alone):
                await w.batch(ns, setup)
            offset[0] = 100.0  # the TTLs are over
            _seven_digit_versions(store)
            together, one = await _both(w, grouped, alone, calls)
            _compare(store, grouped, alone, calls, together, one)

    asyncio.run(main())


def test_a_group_of_appends_to_one_list_is_two_round_trips(
    postgres_url: str, sent: list[str], joining: str
) -> None:
    """Six chat messages appended to one list concurrently, each with its Idempotency-Key.
    ``group``: the first runs alone, the five after it form one group, whose transaction is two
    sends (the lock with every call's reads and versions; the writes with COMMIT). ``join``:
    the five join the first's transaction while its lock is in flight: three sends and one
    COMMIT for all six (the lock with the first's reads; the first's writes with the five's
    reads and versions; their writes with COMMIT)."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"

    async def main() -> list[Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("append", "chat", items=('"hello"',))], idempotency_key="0")
            sent.clear()
            got = await asyncio.gather(
                *(
                    w.batch(ns, [Op("append", "chat", items=(f'"m{i}"',))], idempotency_key=str(i))
                    for i in range(1, 7)
                )
            )
            entry = store.get(ns, "chat")
            assert entry is not None and entry.value == ["hello"] + [f"m{i}" for i in range(1, 7)]
            return list(got)

    got = asyncio.run(main())
    assert [r[0]["length"] for r in got] == list(range(2, 8))
    assert _versions(got) == sorted(_versions(got))
    lookup = "SELECT fingerprint, response FROM bw_idempotency"
    if joining == "group":
        assert len(sent) == 4, sent  # the lone call's two, the group's two
        first, writes = sent[2], sent[3]
        # every call's record lookup and the versions of the four after the first ride with
        # the lock
        assert first.count(lookup) == 5, first
        assert "ORDER BY created_at, ikey LIMIT 5" in first, first  # the oldest records
        assert "generate_series(1, 4)" in first, first
        assert writes.count("INSERT INTO bw_items") == 5 and writes.endswith("COMMIT"), writes
        return
    assert len(sent) == 3, sent
    lock, ahead, writes = sent
    assert lock.count(lookup) == 1 and lock.startswith("BEGIN"), lock
    # the first's writes, then the five's record lookups, their oldest records and versions
    assert ahead.count("INSERT INTO bw_items") == 1 and ahead.count(lookup) == 5, ahead
    assert ahead.index("INSERT INTO bw_items") < ahead.index(lookup), ahead
    assert "ORDER BY created_at, ikey LIMIT 5" in ahead and "generate_series(1, 5)" in ahead
    assert "bw_namespaces (ns" not in ahead + writes  # nobody takes the lock again
    assert writes.count("INSERT INTO bw_items") == 5 and writes.endswith("COMMIT"), writes
    assert [q.endswith("; COMMIT") for q in sent] == [False, False, True]


def test_writes_that_arrive_during_a_groups_lock_join_its_transaction(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, sent: list[str], joining: str
) -> None:
    """A lone append; two arrive while its ``COMMIT`` is in flight and form the next group;
    three more arrive while that group's lock is in flight. ``join``: the three join the
    group's transaction (its writes leave with their reads and versions, then theirs with the
    one ``COMMIT``): five sends, two ``COMMIT``s. ``group``: they wait for it and form a third
    transaction: six sends, three ``COMMIT``s."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"

    calls: list[Call] = [
        ([Op("append", "chat", items=(f'"m{i}"',))], True, str(i)) for i in range(1, 7)
    ]

    async def main() -> list[Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("append", "chat", items=('"hello"',))], idempotency_key="0")
            sent.clear()
            got = await _in_three_waves(w, ns, calls, 2, monkeypatch)
            entry = store.get(ns, "chat")
            assert entry is not None and entry.value == ["hello"] + [f"m{i}" for i in range(1, 7)]
            return got

    got = asyncio.run(main())
    assert [r[0]["length"] for r in got] == list(range(2, 8))
    assert _versions(got) == sorted(_versions(got))
    commits = [q.endswith("; COMMIT") for q in sent]
    if joining == "group":
        assert commits == [False, True] * 3, sent
        return
    assert commits == [False, True, False, False, True], sent
    lookup = "SELECT fingerprint, response FROM bw_idempotency"
    ahead = sent[3]  # the group's writes, then the three's record lookups and versions
    assert ahead.count("INSERT INTO bw_items") == 2 and ahead.count(lookup) == 3, ahead
    assert ahead.index("INSERT INTO bw_items") < ahead.index(lookup), ahead
    assert "generate_series(1, 3)" in ahead and "bw_namespaces (ns" not in ahead, ahead
    assert sent[4].count("INSERT INTO bw_items") == 3, sent[4]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limits", [Limits(), Limits(max_keys=4)], ids=["unlimited", "max_keys"])
@pytest.mark.parametrize("kinds", ["kept", "all"])
def test_a_group_that_others_joined_answers_as_the_calls_one_after_the_other(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    limits: Limits,
    kinds: str,
    joining: str,
) -> None:
    """Random calls in three waves: one alone, twelve while its ``COMMIT`` is in flight (the
    next group), seventeen while that group's lock is in flight (they join it, unless a call
    of the group changed what no call tracks): every answer and the state left are those of
    the same calls one after the other. ``kept``: no deletes and no partial batches, so the
    group hands on what it knows and the third wave joins it."""
    # the first is applied: its COMMIT starts the waves
    calls: list[Call] = [([Op("set", "a", value='"first"')], True, None)]
    calls += random_calls(
        seed + 100, 29, tuple(k for k in KINDS if k != "delete") if kinds == "kept" else KINDS
    )
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"

    async def main() -> None:
        async with async_writer(postgres_url, limits=limits) as (w, store):
            _seven_digit_versions(store)
            joined: list[int] = []
            take = NamespaceGroups._join

            def count(self: NamespaceGroups, namespace: str, calls: list[Any], n: int) -> None:
                take(self, namespace, calls, n)
                joined.append(len(calls))

            monkeypatch.setattr(NamespaceGroups, "_join", count)
            together = await _in_three_waves(w, grouped, calls, 12, monkeypatch)
            if kinds == "kept" and joining == "join":
                assert joined and joined[-1] == 17, joined  # the third wave joined the group
            one = await _one_by_one(w, alone, calls)
            _compare(store, grouped, alone, calls, together, one)

    asyncio.run(main())


@pytest.mark.parametrize("joining", ["group"], indirect=True)
def test_a_group_whose_first_call_is_refused_reads_again(postgres_url: str) -> None:
    """A refused first call's rollback releases the lock it took: the calls after it must not
    trust what was read ahead with it, nor use the versions allocated behind it (a group's
    first call; a lone write's refusal rolls its transaction back before anyone joins). Another
    replica writes right after that rollback (the send holding it is split there); the calls
    after it must see that write and get newer versions than it."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    send = AsyncPgTx.send
    other: list[PostgresStore] = []
    theirs: list[int] = []
    armed = [True]

    async def spy(self: AsyncPgTx, **options: Any) -> Any:
        queue = self._queue
        first_text = self.queued_texts()[:1]
        if not (
            armed[0] and first_text and first_text[0].startswith(b"ROLLBACK TO SAVEPOINT bw_req")
        ):
            return await send(self, **options)
        armed[0] = False
        self._queue = queue[:2]  # the rollback and its RELEASE: the lock is free
        first = await send(self)
        got = await asyncio.to_thread(other[0].batch, ns, [Op("incr", "n", by=100)])
        theirs.append(got[0]["version"])
        self._queue = queue[2:]
        return first + await send(self, **options)

    async def main() -> tuple[list[Any], Any]:
        async with async_writer(postgres_url) as (w, store):
            other.append(PostgresStore(postgres_url, notify=False))  # another replica
            try:
                v = (await w.batch(ns, [Op("set", "n", value="1")]))[0]["version"]
                AsyncPgTx.send = spy  # type: ignore[method-assign]
                try:
                    got = await asyncio.gather(
                        w.batch(ns, [Op("set", "q", value="1")]),  # alone
                        w.batch(ns, [Op("set", "z", value="0", if_version=999)]),  # refused
                        w.batch(ns, [Op("check", "n", version=v)]),  # takes no lock
                        w.batch(ns, [Op("incr", "n", by=1)]),  # its n was read ahead
                        w.batch(ns, [Op("incr", "n", by=1)]),  # its version was allocated
                        return_exceptions=True,
                    )
                finally:
                    AsyncPgTx.send = send  # type: ignore[method-assign]
                return list(got), store.get(ns, "n")
            finally:
                other[0].close()

    got, n = asyncio.run(main())
    assert not armed[0], "the group's rollback was not seen"
    assert isinstance(got[1], BotWireError)
    assert isinstance(got[2], Conflict), got[2]  # n changed since it was read ahead
    assert got[3][0]["value"] == 102 and got[4][0]["value"] == 103
    assert n is not None and n.value == 103
    # the versions of the calls after the other replica's write are newer than its version
    assert theirs[0] < got[3][0]["version"] < got[4][0]["version"] == n.version


def test_a_retry_whose_record_an_earlier_call_shed_applies_again(postgres_url: str) -> None:
    """A call's kept answer makes the namespace outgrow ``max_namespace_bytes``, so the oldest
    record goes: a retry of that record's request later in the group must apply again, as
    it would waiting its turn, not replay the record read ahead before it went."""
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"
    retry = [Op("set", "a", value='"x"')]
    value = '"' + "v" * 40 + '"'

    async def main() -> None:
        async with async_writer(postgres_url) as (w, store):
            _seven_digit_versions(store)
            for ns in (grouped, alone):
                await w.batch(ns, retry, idempotency_key="K")
            used = store.usage(grouped).bytes
        # room for the data and the new answer only once K's answer (21 bytes) is gone
        cap = used + 2 + (1 + len(value)) + 21 - 1
        calls: list[Call] = [
            ([Op("set", "n", value="1")], True, None),
            ([Op("set", "m", value=value)], True, "L"),
            (retry, True, "K"),
        ]
        async with async_writer(postgres_url, limits=Limits(max_namespace_bytes=cap)) as (w, store):
            together, one = await _both(w, grouped, alone, calls)
            assert isinstance(one[2], list) and one[2][0]["version"] > one[1][0]["version"]
            _compare(store, grouped, alone, calls, together, one)

    asyncio.run(main())


def test_what_a_group_hands_on_is_what_the_database_holds(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each group, the statistics and every entry it carried equal the rows PostgreSQL
    holds (an entry's ``created_at`` included: an update keeps the stored one)."""
    carries: list[Any] = []
    plan_apply = Engine.plan_apply

    def spy(self: Engine, *args: Any, **kw: Any) -> Any:
        if kw.get("carry") is not None and not any(c is kw["carry"] for c in carries):
            carries.append(kw["carry"])
        return plan_apply(self, *args, **kw)

    monkeypatch.setattr(Engine, "plan_apply", spy)
    ns = f"carry-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[PostgresStore, list[Any]]:
        async with async_writer(postgres_url) as (w, store):
            rows = []
            for seed in range(4):
                carries.clear()
                # no deletes, no partial batches: what would end the carrying
                calls = random_calls(100 + seed, 20, tuple(k for k in KINDS if k != "delete"))
                await asyncio.gather(
                    *(w.batch(ns, ops, atomic=at, idempotency_key=k) for ops, at, k in calls),
                    return_exceptions=True,
                )
                known = [c for c in carries if c.stats is not None]
                assert known, "no group carried anything"
                carry = known[-1]
                stats = store._statement(
                    lambda tx: tx.one(
                        "SELECT keys, bytes, day, writes, records FROM bw_namespaces WHERE ns = ?",
                        (ns,),
                    )
                )
                held = carry.stats
                assert stats == (held.keys, held.bytes, held.day, held.writes, held.records)
                for key, entry in carry.entries.items():
                    raw = store._statement(lambda tx, key=key: tx.one(*load_query(ns, key)))
                    assert (EntryRow.from_db(raw) if raw else None) == entry, key
                rows.append(len(carry.entries))
            return store, rows

    _, rows = asyncio.run(main())
    assert sum(rows) > 0


def test_once_what_was_handed_on_is_lost_the_calls_read_the_held_lock(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, joining: str
) -> None:
    """A delete drops the idempotency records that may hold the deleted data: what was read
    ahead is no longer trusted, and the calls after it read the lock their transaction
    holds (``held``), never upsert it again."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    locks = record_locks(monkeypatch, ns)

    async def main() -> tuple[list[Any], Any]:
        async with async_writer(postgres_url) as (w, store):
            await w.batch(ns, [Op("set", "k", value="1")])
            locks.clear()
            calls = [w.batch(ns, [Op("incr", "n", by=1)]) for _ in range(3)]
            calls.append(w.batch(ns, [Op("delete", "k")], idempotency_key="d"))
            calls += [w.batch(ns, [Op("incr", "n", by=1)]) for _ in range(3)]
            got = await asyncio.gather(*calls)
            return list(got), store.get(ns, "n")

    got, n = asyncio.run(main())
    assert [r[0]["value"] for i, r in enumerate(got) if i != 3] == [1, 2, 3, 4, 5, 6]
    assert got[3] == [{"deleted": True}] and n is not None and n.value == 6
    # alone: takes it; the group: its first takes it, two are handed on and the delete too,
    # the three after the delete read it. Joined, the first's lock is handed on instead.
    taken = [False, False] if joining == "group" else [False]
    assert locks == [*taken, True, True, True], locks


def test_at_the_record_cap_a_group_drops_the_oldest_by_key_in_two_round_trips(
    postgres_url: str, sent: list[str], joining: str
) -> None:
    """At 1,000 idempotency records each keyed write drops the oldest. In a group the oldest
    were read ahead with the lock: each call drops its own by key and the statistics stay
    exact, so the group stays two round trips; a retry of a request whose record an earlier
    call of the group dropped applies again, as it would have waiting its turn, and a retry
    of one still kept replays."""
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"
    fill = [Op("incr", "c", by=1)]
    calls: list[Call] = [([Op("incr", "n", by=1)], True, None)]  # the group's first
    calls += [([Op("append", "chat", items=(f'"m{i}"',))], True, f"m{i}") for i in range(6)]
    calls += [(fill, True, "f0002"), (fill, True, "f0500"), (fill, True, "x")]
    counts: list[int] = []

    async def main() -> None:
        async with async_writer(postgres_url) as (w, store):
            await _at_the_record_cap(w, store, grouped, alone, fill=fill)
            sent.clear()
            together = await asyncio.gather(
                *(w.batch(grouped, ops, atomic=at, idempotency_key=k) for ops, at, k in calls),
                return_exceptions=True,
            )
            counts.append(len(sent))
            one = []
            for ops, at, k in calls:
                one.append(await w.batch(alone, ops, atomic=at, idempotency_key=k))
            _compare(store, grouped, alone, calls, together, one, frozenset({"f0500"}))
            assert together[7][0]["value"] == 1001  # f0002's record was dropped: applied again
            assert together[8][0]["value"] == 501  # f0500's is kept: replayed
            assert store.usage(grouped).bytes == store.usage(alone).bytes

    asyncio.run(main())
    # group: the first call alone (2), the group of nine (2); join: the nine join the first's
    # transaction, their reads and the oldest records read after its writes (3, one COMMIT)
    assert counts == ([4] if joining == "group" else [3]), counts


def test_at_the_record_cap_writes_that_join_a_group_drop_the_oldest_by_key(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, sent: list[str], joining: str
) -> None:
    """At 1,000 idempotency records: a lone keyed write (it drops the oldest by its key, read
    with its lock: this replica saw the namespace full), four that arrive while its ``COMMIT``
    is in flight (a group:
    the oldest read with its lock), and five that arrive while the group's lock is in flight.
    ``join``: the five join the group and drop the oldest *left by the group's writes*, read
    with their own reads, by key: five sends in all. Every answer and the state (the records
    kept, the statistics) are those of the calls one after the other."""
    tag = uuid.uuid4().hex[:8]
    grouped, alone = f"carry-g-{tag}", f"carry-a-{tag}"
    fill = [Op("incr", "c", by=1)]
    calls: list[Call] = [(fill, True, "lone")]
    calls += [([Op("append", "chat", items=(f'"m{i}"',))], True, f"m{i}") for i in range(9)]

    async def main() -> None:
        async with async_writer(postgres_url) as (w, store):
            await _at_the_record_cap(w, store, grouped, alone, fill=fill)
            sent.clear()
            together = await _in_three_waves(w, grouped, calls, 4, monkeypatch)
            counts = len(sent)
            one = [await w.batch(alone, ops, atomic=at, idempotency_key=k) for ops, at, k in calls]
            _compare(store, grouped, alone, calls, together, one)
            assert store.usage(grouped).bytes == store.usage(alone).bytes
            # lone: 2 sends; the group: 2, and the five form a third transaction of 2 (group),
            # or join it: its writes leave with their reads and the oldest records (3 for both)
            assert counts == (6 if joining == "group" else 5), sent

    asyncio.run(main())


@pytest.mark.parametrize("loop", [True, False], ids=["event-loop", "threaded"])
def test_an_entry_read_ahead_then_purged_is_not_counted_twice(
    postgres_url: str, loop: bool
) -> None:
    """A batch's third key is over ``max_keys``, so the expired ``a`` is purged; its row was
    read ahead with the lock, and the batch's ``incr a`` must then find it absent, a fourth
    key over the limit: the batch is refused. It found the stale row instead, removed it
    again, and the namespace counted 3 keys while holding 4 (``max_keys=3`` exceeded). Both
    PostgreSQL write paths read ahead."""
    offset = [0.0]
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    batch = [Op("set", "x", value="1"), Op("set", "y", value="1"), Op("incr", "a", by=1)]

    async def main() -> tuple[Any, int, int]:
        async with async_writer(
            postgres_url, limits=Limits(max_keys=3), clock_offset=lambda: offset[0]
        ) as (w, store):
            await w.batch(ns, [Op("set", "a", value="5", ttl=50), Op("set", "b", value="1")])
            offset[0] = 100.0  # a has expired (still counted until purged)
            got: Any
            try:
                if loop:
                    got = await w.batch(ns, batch)
                else:
                    got = await asyncio.to_thread(store.batch, ns, batch)
            except QuotaExceeded as exc:
                got = exc
            rows = store._statement(
                lambda tx: tx.one("SELECT count(*) FROM bw_entries WHERE ns = ?", (ns,))
            )[0]
            return got, store.usage(ns).keys, rows

    got, counted, rows = asyncio.run(main())
    assert isinstance(got, QuotaExceeded), got
    # the refused batch left a (expired: not counted) and b
    assert (counted, rows) == (1, 2), (counted, rows)


async def _six_appends(w: Any, store: PostgresStore, ns: str) -> None:
    """Six keyed appends to one list at once: each applied once, in its list."""
    got = await asyncio.gather(
        *(
            w.batch(ns, [Op("append", "chat", items=(f'"m{i}"',))], idempotency_key=str(i))
            for i in range(6)
        )
    )
    assert sorted(r[0]["length"] for r in got) == list(range(1, 7))
    entry = store.get(ns, "chat")
    assert entry is not None and sorted(entry.value) == [f"m{i}" for i in range(6)]


def _records(store: PostgresStore, ns: str) -> tuple[Any, ...]:
    """The records kept, their count as saved, the oldest of the fill's kept; and whether the
    statistics' bytes are those of the entries and records."""
    kept = store._statement(
        lambda tx: tx.one(
            "SELECT count(*), min(ikey) FILTER (WHERE ikey LIKE 'f%'),"
            " coalesce(sum(octet_length(response)), 0)"
            " FROM bw_idempotency WHERE ns = ?",
            (ns,),
        )
    )
    saved = store._statement(
        lambda tx: tx.one("SELECT records, bytes FROM bw_namespaces WHERE ns = ?", (ns,))
    )
    data = store._statement(
        lambda tx: tx.one("SELECT coalesce(sum(bytes), 0) FROM bw_entries WHERE ns = ?", (ns,))
    )
    return int(kept[0]), saved[0], kept[1], saved[1] == int(data[0]) + int(kept[2])


@pytest.mark.parametrize("joining", ["join"], indirect=True)
def test_a_lone_write_at_the_record_cap_takes_joiners_once_the_replica_knows(
    postgres_url: str, sent: list[str]
) -> None:
    """At the 1,000-record cap a lone keyed write drops the oldest record. The replica that
    saw the namespace full (``NamespaceGroups._note_full``) reads the oldest with the lone
    write's lock, so it drops it by its key, the statistics stay exact, and the five appends
    that arrive during its first round trip join it: three sends, one ``COMMIT``, and each
    drops the next oldest. (Without the hint it was four sends: see the next test.)"""
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    fill = [Op("incr", "c", by=1)]

    async def main() -> tuple[Any, ...]:
        async with async_writer(postgres_url) as (w, store):
            await _at_the_record_cap(w, store, ns, fill=fill)
            sent.clear()
            await _six_appends(w, store, ns)
            return _records(store, ns)

    # the six oldest went, f0000 to f0005; the count and the bytes saved are exact
    assert asyncio.run(main()) == (1000, 1000, "f0006", True)
    assert len(sent) == 3, sent
    # BEGIN, the lock, its idempotency record, its entry and the oldest record
    assert len(sent[0].split("; ")) == 5, sent
    assert [q.endswith("; COMMIT") for q in sent] == [False, False, True], sent
    assert not any("bytes = bytes -" in q for q in sent), sent  # no relative update


@pytest.mark.parametrize("joining", ["join"], indirect=True)
def test_nobody_joins_a_lone_write_that_leaves_nothing_to_hand_on(
    postgres_url: str, sent: list[str]
) -> None:
    """A replica that has not seen the namespace full (another filled it): its lone keyed
    write at the cap drops the oldest record by a relative update, so nothing it knows can be
    handed on: joined, the five appends behind it would each read in a round trip of their own
    (seven sends). They form the next group instead, whose lock reads them all at once: two
    sends for the lone write, two for the group. Then it knows, and its next lone write
    reads the oldest with its lock."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    fill = [Op("incr", "c", by=1)]

    async def main() -> tuple[Any, ...]:
        async with async_writer(postgres_url) as (w, store):
            await _at_the_record_cap(w, store, ns, fill=fill)
        async with async_writer(postgres_url) as (w, store):
            sent.clear()
            await _six_appends(w, store, ns)
            assert len(sent) == 4 and len(sent[0].split("; ")) == 4, sent
            assert [q.endswith("; COMMIT") for q in sent] == [False, True, False, True], sent
            assert "bytes = bytes -" in sent[1], sent  # the lone write's relative update
            sent.clear()
            await w.batch(ns, fill, idempotency_key="after")
            assert len(sent) == 2 and "bytes = bytes -" not in sent[1], sent
            return _records(store, ns)

    assert asyncio.run(main()) == (1000, 1000, "f0007", True)


def test_a_stale_full_hint_changes_no_answer(postgres_url: str, sent: list[str]) -> None:
    """The hint is only a hint: the namespace was cleared on another replica after this one
    saw it full. The next lone keyed write reads an oldest record it does not need (none is
    left), drops nothing, counts one record, and the replica forgets the hint."""
    ns = f"carry-{uuid.uuid4().hex[:8]}"
    fill = [Op("incr", "c", by=1)]

    async def main() -> tuple[Any, ...]:
        async with async_writer(postgres_url) as (w, store):
            await _at_the_record_cap(w, store, ns, fill=fill)
            assert ns in w.groups._full
            store.clear(ns)  # as another replica would
            got = await w.batch(ns, fill, idempotency_key="next")
            assert got[0]["value"] == 1
            assert ns not in w.groups._full
            return _records(store, ns)

    assert asyncio.run(main()) == (1, 1, None, True)


def test_the_full_hint_keeps_the_namespaces_noted_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint is bounded: the namespaces noted last are kept (one noted again is the
    newest), the others forgotten; a namespace noted below the cap is forgotten at once."""
    import botwire_server.storage._pg_group as pg_group

    monkeypatch.setattr(pg_group, "MAX_FULL", 3)
    groups = NamespaceGroups(None, timeout=1.0, late=lambda ns, t: TimeoutError(ns))  # type: ignore[arg-type]
    for ns in ("a", "b", "c", "a", "d"):
        groups._note_full(ns, True)
    assert list(groups._full) == ["c", "a", "d"]
    groups._note_full("c", False)
    assert list(groups._full) == ["a", "d"]
