"""The server's event-loop reads (``PostgresStore.async_reader``): the same SQL and row handling
as the sync store, the same failure behaviour (a lost connection is retried on a fresh one, a
pool that gives no connection in time is ``Unavailable``), and over HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from server.srv_helpers import key_url
from support.postgres import terminate_backends, with_async_reader
from support.server import running_server

from botwire import InvalidArgument, Memory, TypeMismatch, Unavailable
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
T = TypeVar("T")


def test_reads_match_the_sync_store(make_store: MakeStore, ns: str) -> None:
    store = make_store()
    mem = Memory(ns, store=store)
    mem.set("v", {"a": [1, "é", None]})
    mem.set("arr", [1, 2, 3])
    mem.append("l", "x", "y", "z")
    mem.set("gone", 1, ttl=0.01)
    time.sleep(0.05)
    cases = [
        ("v", None),
        ("arr", None),
        ("arr", 2),
        ("arr", 0),
        ("l", None),
        ("l", 2),
        ("l", 0),
        ("missing", None),
        ("gone", None),
    ]

    async def body(reader: Any) -> list[tuple[Any, Any]]:
        return [
            (await reader.get_json(ns, k, tail=t), await reader.get(ns, k, tail=t))
            for k, t in cases
        ]

    got = with_async_reader(store, body)
    assert got == [(store.get_json(ns, k, tail=t), store.get(ns, k, tail=t)) for k, t in cases]
    assert got[0][0][0] == '{"a":[1,"é",null]}'
    assert got[7] == (None, None)


def test_stored_bytes_match_the_sync_store(make_store: MakeStore, ns: str) -> None:
    """A batch's response budget is looked up on the event loop (``stored_bytes``): the same
    figure as the sync store's, for repeated, missing and expired keys, and past the 100 keys
    of one statement."""
    store = make_store()
    mem = Memory(ns, store=store)
    mem.set("v", {"a": "x" * 100})
    mem.append("l", "x", "y")
    mem.set("gone", 1, ttl=0.01)
    for i in range(600):
        mem.set(f"k{i}", i)
    time.sleep(0.05)
    cases = [
        ["v"],
        ["v", "v", "l"],
        ["missing", "gone"],
        [f"k{i}" for i in range(600)] + ["v"],
    ]

    async def body(reader: Any) -> list[int]:
        return [await reader.stored_bytes(ns, keys) for keys in cases]

    got = with_async_reader(store, body)
    assert got == [store.stored_bytes(ns, keys) for keys in cases]
    assert got[1] == 2 * got[0] + store.stored_bytes(ns, ["l"]) and got[2] == 0


def test_read_batches_match_the_sync_store(make_store: MakeStore, ns: str) -> None:
    """A batch of whole-value gets (``get_many``, a LangGraph ``get_tuple``) is read on the
    event loop in one statement: the same answers as the sync store's, for values, lists,
    repeated, missing and expired keys; a batch with a ``tail`` or of more than
    ``BATCH_GETS`` gets is left to the sync store (``None``)."""
    from botwire.store import Op
    from botwire_server.storage._pg_async import BATCH_GETS

    store = make_store()
    mem = Memory(ns, store=store)
    mem.set("v", {"a": [1, "é", None]})
    mem.append("l", "x", "y", "z")
    mem.set("gone", 1, ttl=0.01)
    time.sleep(0.05)
    cases = [
        ["v"],
        ["v", "l", "missing", "gone", "v", "l"],
        ["missing"],
        [f"k{i}" for i in range(BATCH_GETS - 1)] + ["l"],
    ]
    batches = [[Op("get", key) for key in keys] for keys in cases]
    left = [
        [Op("get", "v"), Op("get", "l", tail=1)],
        [Op("get", "v")] * (BATCH_GETS + 1),
        [],
    ]

    async def body(reader: Any) -> tuple[list[Any], list[Any]]:
        return (
            [await reader.read_batch_json(ns, ops) for ops in batches],
            [await reader.read_batch_json(ns, ops) for ops in left],
        )

    got, not_here = with_async_reader(store, body)
    assert got == [store.read_batch_json(ns, ops) for ops in batches]
    assert got[1][2] == got[1][3] == '{"found":false}' and got[1][4] == got[1][0]
    assert not_here == [None, None, None]


def test_budgeted_read_batches_match_the_sync_store(make_store: MakeStore, ns: str) -> None:
    """A batch of gets with its response budget in the same statement
    (``read_batch_json_within``): the bytes are the sync store's ``stored_bytes`` and the
    answers its ``read_batch_json``, within the budget; over it (by one byte) the bytes alone;
    a batch ``read_batch_json`` leaves to the sync store is left too (``None``)."""
    from botwire.store import Op

    store = make_store()
    mem = Memory(ns, store=store)
    mem.set("v", {"a": [1, "é", None]})
    mem.append("l", *range(50))
    mem.append("t", 1, 2, 3, max_len=2)  # a trimmed list: its head moved
    mem.set("gone", "x" * 1000, ttl=0.01)
    time.sleep(0.05)
    cases = [["v"], ["v", "l", "missing", "gone", "v", "t"], ["missing"], ["gone"]]
    batches = [[Op("get", key) for key in keys] for keys in cases]

    async def body(reader: Any) -> list[Any]:
        out = []
        for keys, ops in zip(cases, batches, strict=True):
            size = store.stored_bytes(ns, keys)
            out.append(await reader.read_batch_json_within(ns, ops, size))
            out.append(await reader.read_batch_json_within(ns, ops, size - 1))
        out.append(await reader.read_batch_json_within(ns, [Op("get", "l", tail=1)], 10**6))
        return out

    got = with_async_reader(store, body)
    expected = []
    for keys, ops in zip(cases, batches, strict=True):
        size = store.stored_bytes(ns, keys)
        expected += [(size, store.read_batch_json(ns, ops)), (size, None)]
    assert got == [*expected, None]
    assert '"value":[2,3]' in got[2][1][5] and got[2][1][3] == '{"found":false}'
    assert got[6] == (0, ['{"found":false}']) and got[7] == (0, None)


def test_a_read_batch_on_the_event_loop_is_one_snapshot(make_store: MakeStore, ns: str) -> None:
    """Two keys written together (one atomic batch, by another connection, meanwhile) are
    never read half-updated: the batch's gets see one snapshot, as the sync store's
    ``REPEATABLE READ`` transaction did."""
    import threading

    from botwire.store import Op

    store = make_store(max_size=2)
    store.batch(ns, [Op("set", "a", value="0"), Op("set", "b", value="0")])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.batch(ns, [Op("set", "a", value=str(i)), Op("set", "b", value=str(i))])

    async def body(reader: Any) -> tuple[int, int]:
        torn = moved = 0
        last = None
        for _ in range(400):
            got = await reader.read_batch_json(ns, [Op("get", "a"), Op("get", "b")])
            a, b = (text.split('"value":')[1].split(",")[0] for text in got)
            torn += a != b
            moved += a != last
            last = a
        return torn, moved

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        torn, moved = with_async_reader(store, body)
    finally:
        stop.set()
        thread.join()
    assert moved > 10  # the writes went on while the batches were read
    assert torn == 0


def test_read_errors_match_the_sync_store(make_store: MakeStore, ns: str) -> None:
    store = make_store()
    Memory(ns, store=store).set("s", "text")

    async def body(reader: Any) -> list[type[BaseException]]:
        raised = []
        for tail in (1, -1):
            with pytest.raises((TypeMismatch, InvalidArgument)) as err:
                await reader.get_json(ns, "s", tail=tail)
            raised.append(type(err.value))
        return raised

    assert with_async_reader(store, body) == [TypeMismatch, InvalidArgument]


def test_survives_connections_killed_by_the_server(
    make_store: MakeStore, ns: str, postgres_url: str
) -> None:
    store = make_store(min_size=2, max_size=2)
    Memory(ns, store=store).set("k", 1)

    async def body(reader: Any) -> list[Any]:
        seen = [(await reader.get_json(ns, "k"))[0]]
        for _ in range(2):
            await asyncio.sleep(0.2)  # let the pool fill up before its connections die
            assert await asyncio.to_thread(terminate_backends, postgres_url) >= 1
            seen.append((await reader.get_json(ns, "k"))[0])  # retried on a fresh connection
            seen.append((await reader.get(ns, "k")).value)
        return seen

    assert with_async_reader(store, body) == ["1", "1", 1, "1", 1]


def test_no_connection_in_time_is_unavailable(make_store: MakeStore, ns: str) -> None:
    store = make_store(timeout=1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    store.dsn = f"postgresql://nobody:secret@127.0.0.1:{port}/x"  # the reader's pool only

    async def body(reader: Any) -> float:
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as err:
            await reader.get_json(ns, "k")
        assert "secret" not in str(err.value)
        return time.monotonic() - t0

    assert with_async_reader(store, body) < 4


def test_closed_reader_is_unavailable(make_store: MakeStore, ns: str) -> None:
    store = make_store()

    async def main() -> None:
        reader = store.async_reader()
        await reader.open()
        await reader.close()
        with pytest.raises(Unavailable):
            await reader.get_json(ns, "k")

    asyncio.run(main())


@pytest.mark.parametrize("threshold", [5, None], ids=["prepared", "pgbouncer"])
def test_prepared_statements_follow_the_connect_options(
    make_store: MakeStore, ns: str, threshold: int | None
) -> None:
    """Prepared after psycopg's ``prepare_threshold`` uses, as on the sync pool; never with
    ``prepare_threshold=None`` (PgBouncer in transaction mode)."""
    store = make_store(min_size=1, max_size=1, prepare_threshold=threshold)
    Memory(ns, store=store).set("k", 1)

    async def body(reader: Any) -> list[tuple[Any, ...]]:
        for _ in range(8):
            assert (await reader.get_json(ns, "k"))[0] == "1"
        return await _on_the_read_connection(
            reader,
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE statement LIKE '%FROM bw_entries e LEFT JOIN%'",
        )

    assert with_async_reader(store, body) == [(0 if threshold is None else 1,)]


async def _on_the_read_connection(reader: Any, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows on the reader's only read connection (a pool of one)."""
    conn: psycopg.AsyncConnection[Any] = await reader._pool.getconn()
    try:
        cur = await conn.execute(sql)
        return await cur.fetchall()
    finally:
        await reader._pool.putconn(conn)


@pytest.mark.parametrize("threshold", [5, None], ids=["prepared", "pgbouncer"])
def test_batches_of_a_few_keys_are_not_planned_at_every_read(
    make_store: MakeStore, ns: str, threshold: int | None
) -> None:
    """A batch of 1-5 gets (a LangGraph ``get_tuple``, a few coalesced GETs) runs the prepared
    statement's generic plan: PostgreSQL's own choice planned it again at every execution,
    200-560 µs a read against 120-150 µs (``_pg_common.generic_plans``). Behind a
    transaction-mode pooler nothing is prepared, and nothing is set on the shared session."""
    from botwire.store import Op

    store = make_store(min_size=1, max_size=1, prepare_threshold=threshold)
    mem = Memory(ns, store=store)
    mem.set("a", 1)
    mem.set("b", [1, 2])
    ops = [Op("get", "a"), Op("get", "b"), Op("get", "missing")]

    async def body(reader: Any) -> tuple[list[Any], list[tuple[Any, ...]], str]:
        got = [await reader.read_batch_json_within(ns, ops, 10**6) for _ in range(10)]
        got += [await reader.read_batch_json(ns, ops) for _ in range(10)]
        plans = await _on_the_read_connection(
            reader,
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%unnest%'",
        )
        ((mode,),) = await _on_the_read_connection(reader, "SHOW plan_cache_mode")
        return got, plans, str(mode)

    got, plans, mode = with_async_reader(store, body)
    texts = store.read_batch_json(ns, ops)
    assert got == [(store.stored_bytes(ns, ["a", "b", "missing"]), texts)] * 10 + [texts] * 10
    if threshold is None:
        assert (plans, mode) == ([], "auto")
        return
    assert len(plans) == 2  # the budgeted batch and the plain one, each prepared once
    assert all(custom == 0 and generic >= 5 for generic, custom in plans), plans
    assert mode == "force_generic_plan"


def test_http_get_survives_connections_killed_by_the_server(postgres_url: str) -> None:
    ns = f"async-{uuid.uuid4().hex[:8]}"
    with running_server(database=postgres_url) as s, httpx.Client(base_url=s.url) as http:
        assert http.put(key_url(ns, "k"), json={"value": {"x": 1}}).status_code == 200
        assert http.patch(key_url(ns, "l"), json={"append": [1, 2, 3]}).status_code == 200
        for _ in range(3):
            assert http.get(key_url(ns, "k")).json()["value"] == {"x": 1}
            assert terminate_backends(postgres_url) >= 1
            got = http.get(key_url(ns, "k"))
            assert got.status_code == 200, got.text
            assert got.json()["value"] == {"x": 1}
            assert http.get(key_url(ns, "l"), params={"tail": 2}).json()["value"] == [2, 3]
        metrics = http.get("/metrics").text
        assert not [
            line for line in metrics.splitlines() if line.startswith("botwire_store_errors_total{")
        ]


def test_waiting_for_a_connection_is_bounded_by_the_timeout(make_store: MakeStore, ns: str) -> None:
    """Reads beyond ``read_max_size`` queue (outside the pool) for ``timeout`` at most."""
    store = make_store(read_max_size=1, timeout=0.5)
    Memory(ns, store=store).set("k", 1)

    async def body(reader: Any) -> tuple[float, str]:
        await reader._gate.acquire()  # the only slot, as a stuck query would hold it
        t0 = time.monotonic()
        with pytest.raises(Unavailable, match="no connection"):
            await reader.get_json(ns, "k")
        waited = time.monotonic() - t0
        waiting = asyncio.create_task(reader.get_json(ns, "k"))
        await asyncio.sleep(0.05)
        reader._gate.release()  # handed straight to the waiting read
        return waited, (await waiting)[0]

    waited, value = with_async_reader(store, body)
    assert 0.4 < waited < 2
    assert value == "1"


def test_a_cancelled_wait_gives_its_slot_back(make_store: MakeStore, ns: str) -> None:
    store = make_store(read_max_size=1)
    Memory(ns, store=store).set("k", 1)

    async def body(reader: Any) -> list[str]:
        await reader._gate.acquire()
        waiters = [asyncio.create_task(reader.get_json(ns, "k")) for _ in range(3)]
        await asyncio.sleep(0.05)
        waiters[0].cancel()
        reader._gate.release()
        waiters[1].cancel()  # cancelled just as the slot reached it: it must pass it on
        done = await asyncio.gather(*waiters, return_exceptions=True)
        assert [isinstance(d, asyncio.CancelledError) for d in done] == [True, True, False]
        return [(await reader.get_json(ns, "k"))[0] for _ in range(3)] + [done[2][0]]

    assert with_async_reader(store, body) == ["1", "1", "1", "1"]


def test_read_pool_size_is_checked(make_store: MakeStore) -> None:
    with pytest.raises(InvalidArgument, match="read_max_size"):
        make_store(read_max_size=0)
