"""How many network round trips each operation costs (counted, never timed).

The store talks to PostgreSQL through a loopback TCP relay that counts *turns*
(``support.turns``): each time bytes go from client to server after the server last spoke (or at
the start) is one round trip. That is exactly what latency costs, whatever psycopg does
internally.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from support.turns import relayed

from botwire import Conflict, Memory
from botwire.store import Op
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def test_round_trips(postgres_url: str, ns: str) -> None:
    with relayed(postgres_url) as (url, relay), PostgresStore(url, min_size=1, max_size=1) as store:
        # past psycopg's prepare threshold and the writes' (_pg_prepare): prepared statements
        runs = [_measure(store, ns, relay.take) for _ in range(7)]
        prepares = store._prepared.prepares
    first, measured = runs[0], runs[-1]
    print("\nround trips per operation:", measured, "first run:", first)
    # The writes' hot statements are prepared once per connection, one round trip each, in
    # the first runs only (as on the event loop, below); psycopg prepares the reads' in a
    # middle run. Every op's count in the last run is asserted below.
    assert prepares > 0
    assert sum(first.values()) - sum(measured.values()) <= prepares, (first, prepares)
    assert measured["get"] == 1
    assert measured["get_many of 20 keys"] == 1
    assert measured["tail"] == 1
    assert measured["list"] == 1
    for op in ("set (new key)", "set (existing key)", "append", "incr", "delete"):
        assert measured[op] == 2, (op, measured)
    assert measured["append 3 items with max_len trim"] == 3
    assert measured["pop"] == 3
    # every key's entry is read ahead with the lock (Engine.write_prefetch): one write's two
    assert measured["set_many of 20 keys"] == 2
    assert measured["refused set (conflict)"] == 2
    assert measured["incr with idempotency key"] == 2
    assert measured["replayed idempotent incr"] == 2
    assert measured["usage"] == 3


def _measure(store: PostgresStore, ns: str, take: Callable[[], int]) -> dict[str, Any]:
    mem = Memory(ns, store=store)
    mem.clear()
    mem.set("warm", 1)  # the pool has a connection
    mem.set("s", "text")
    measured: dict[str, int] = {}
    take()
    mem.get("warm")
    measured["get"] = take()
    mem.set("k", {"a": 1})
    measured["set (new key)"] = take()
    mem.set("k", {"a": 2})
    measured["set (existing key)"] = take()
    mem.append("chat", {"m": 1})
    measured["append"] = take()
    mem.append("chat", {"m": 2}, {"m": 3}, {"m": 4}, max_len=2)
    measured["append 3 items with max_len trim"] = take()
    mem.incr("n")
    measured["incr"] = take()
    mem.pop("chat")
    measured["pop"] = take()
    mem.delete("k")
    measured["delete"] = take()
    mem.get_many([f"k{i}" for i in range(20)])
    measured["get_many of 20 keys"] = take()
    mem.set_many({f"m{i}": i for i in range(20)})
    measured["set_many of 20 keys"] = take()
    mem.tail("chat", 1)
    measured["tail"] = take()
    mem.list()
    measured["list"] = take()
    with pytest.raises(Conflict):
        mem.set("s", 1, if_absent=True)
    measured["refused set (conflict)"] = take()
    once = f"once-{uuid.uuid4()}"
    store.batch(ns, [Op("incr", "n")], idempotency_key=once)
    measured["incr with idempotency key"] = take()
    store.batch(ns, [Op("incr", "n")], idempotency_key=once)
    measured["replayed idempotent incr"] = take()
    mem.usage()
    measured["usage"] = take()
    return measured


def test_round_trips_of_writes_on_the_event_loop(postgres_url: str, ns: str) -> None:
    """The server's writes (``async_reader().batch``: the engine's plan under the async driver)
    cost what the sync store's cost: one definition of each op, the same pipelining."""
    import asyncio

    with (
        relayed(postgres_url) as (url, relay),
        PostgresStore(url, min_size=1, max_size=1, async_writes=True) as store,
    ):
        Memory(ns, store=store).clear()

        prepares: list[int] = []

        async def main() -> list[dict[str, int]]:
            reader = store.async_reader()
            await reader.open()
            try:
                runs = []
                for _ in range(7):  # past psycopg's prepare threshold, as above
                    runs.append(await _measure_async(reader, ns, relay.take))
                    prepares.append(reader.prepared.prepares)
                return runs
            finally:
                await reader.close()

        runs = asyncio.run(main())
    first, measured = runs[0], runs[-1]
    print("\nround trips per write on the event loop:", measured, "first run:", first)
    # The writes' hot statements are prepared once per connection (_pg_prepare), one round trip
    # each, in the first runs only; every op's count in the last run is asserted below.
    assert prepares[0] > 0 and prepares[-3] == prepares[-1], prepares
    assert sum(first.values()) - sum(measured.values()) <= prepares[-1], (first, prepares)
    for op in ("set (new key)", "set (existing key)", "append", "incr", "delete"):
        assert measured[op] == 2, (op, measured)
    assert measured["append 3 items with max_len trim"] == 3
    assert measured["pop"] == 3
    assert measured["set_many of 20 keys"] == 2
    assert measured["refused set (conflict)"] == 2
    assert measured["incr with idempotency key"] == 2
    assert measured["replayed idempotent incr"] == 2


async def _measure_async(reader: Any, ns: str, take: Callable[[], int]) -> dict[str, int]:
    import asyncio

    async def write(*ops: Op, **kw: Any) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = await reader.batch(ns, list(ops), **kw)
        return results

    async def measure(name: str, *ops: Op, **kw: Any) -> None:
        with contextlib.suppress(Conflict):
            await write(*ops, **kw)
        await asyncio.to_thread(lambda: measured.__setitem__(name, take()))

    measured: dict[str, int] = {}
    await write(Op("delete", "k"), Op("delete", "chat"), Op("set", "s", value='"text"'))
    await asyncio.to_thread(take)
    await measure("set (new key)", Op("set", "k", value='{"a":1}'))
    await measure("set (existing key)", Op("set", "k", value='{"a":2}'))
    await measure("append", Op("append", "chat", items=('{"m":1}',)))
    await measure(
        "append 3 items with max_len trim",
        Op("append", "chat", items=('{"m":2}', '{"m":3}', '{"m":4}'), max_len=2),
    )
    await measure("incr", Op("incr", "n", by=1))
    await measure("pop", Op("pop", "chat"))
    await measure("delete", Op("delete", "k"))
    await measure("set_many of 20 keys", *(Op("set", f"m{i}", value=str(i)) for i in range(20)))
    await measure("refused set (conflict)", Op("set", "s", value="1", if_absent=True))
    once = f"once-{uuid.uuid4()}"
    await measure("incr with idempotency key", Op("incr", "n", by=1), idempotency_key=once)
    await measure("replayed idempotent incr", Op("incr", "n", by=1), idempotency_key=once)
    return measured


def test_a_keyed_write_at_the_record_cap_costs_no_extra_round_trip(
    postgres_url: str, ns: str
) -> None:
    """A namespace keeps at most 1,000 idempotency records, so once there every keyed write
    drops the oldest: that is queued with the write's other statements (issue 22), where it
    used to read every record back first (one more round trip and 0.65 ms per write)."""
    with PostgresStore(postgres_url) as filler:
        for i in range(1001):
            filler.batch(ns, [Op("incr", "n")], idempotency_key=f"fill-{i}")
    with relayed(postgres_url) as (url, relay), PostgresStore(url, min_size=1, max_size=1) as store:
        store.batch(ns, [Op("incr", "n")], idempotency_key="warm")  # the pool has a connection
        relay.take()
        store.batch(ns, [Op("incr", "n")], idempotency_key="at-cap")
        assert relay.take() == 2
        assert store.usage(ns).keys == 1
