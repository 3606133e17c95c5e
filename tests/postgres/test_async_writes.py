"""The server's PostgreSQL writes on the event loop (``AsyncPgReader.batch``: the engine's plan,
``Engine.plan_apply``, under the async driver of ``_pg_write``): the same answers as the sync
store, the same failure behaviour (a connection lost before COMMIT is retried on a fresh one; a
pool that gives no connection in time is ``Unavailable``; a refused op rolls back and leaves the
connection usable), and over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from server.srv_helpers import key_url
from support.answers import strip_answer
from support.postgres import terminate_backends, with_async_reader
from support.server import running_server

from botwire import Conflict, Limits, QuotaExceeded, Unavailable
from botwire.store import Op
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
T = TypeVar("T")


HOSTILE_KEY = "k'%s?$1\\"
HOSTILE_VALUE = json.dumps({"t": "'); DROP TABLE bw_entries; -- %s %% ? $1 \\ \u00e9 \U0001f600"})

#: Batches whose answers the sync store and the event loop must agree on (versions aside).
SCRIPT: list[tuple[list[Op], dict[str, Any]]] = [
    ([Op("set", "k", value='{"a":1}')], {}),
    ([Op("append", "l", items=("1", "2", "3"), max_len=2)], {}),
    ([Op("incr", "n", by=2), Op("incr", "n", by=3)], {}),
    ([Op("pop", "l")], {}),
    ([Op("set", "k", value="2", if_absent=True)], {}),  # a conflict
    ([Op("set", "x", value="1"), Op("incr", "k"), Op("set", "y", value="1")], {"atomic": False}),
    ([Op("set", "arr", value="[1,2]"), Op("append", "arr", items=("3",))], {}),
    ([Op("delete", "x"), Op("get", "y"), Op("get", "arr")], {}),
    ([Op("incr", "n")], {"idempotency_key": "once"}),
    ([Op("incr", "n")], {"idempotency_key": "once"}),  # replayed
    ([Op("set", "k", value="1")], {"idempotency_key": "once"}),  # reused key: refused
    # Parameters are bound client-side on the loop (_pg_write.AsyncPgTx): quotes, placeholders,
    # backslashes and SQL in keys and values must come back as they went in.
    ([Op("set", HOSTILE_KEY, value=HOSTILE_VALUE)], {}),
    ([Op("append", HOSTILE_KEY + "-l", items=(HOSTILE_VALUE, '"%%"'))], {}),
    ([Op("get", HOSTILE_KEY), Op("get", HOSTILE_KEY + "-l")], {}),
]


def _answers(ns: str, run: Callable[[list[Op], dict[str, Any]], Any]) -> list[Any]:
    out = []
    for ops, kw in SCRIPT:
        try:
            out.append(strip_answer(run(ops, kw)))
        except Exception as exc:  # the error is the answer
            out.append((type(exc).__name__, str(exc).split(" namespace ")[0]))
    return json.loads(json.dumps(out).replace(ns, "NS"))


def test_writes_on_the_loop_answer_as_the_sync_store(make_store: MakeStore) -> None:
    store = make_store(async_writes=True)
    sync_ns, loop_ns = f"sync-{uuid.uuid4().hex[:8]}", f"loop-{uuid.uuid4().hex[:8]}"
    expected = _answers(sync_ns, lambda ops, kw: store.batch(sync_ns, ops, **kw))

    async def body(writer: Any) -> list[Any]:
        out = []
        for ops, kw in SCRIPT:
            try:
                out.append(strip_answer(await writer.batch(loop_ns, ops, **kw)))
            except Exception as exc:
                out.append((type(exc).__name__, str(exc).split(" namespace ")[0]))
        return json.loads(json.dumps(out).replace(loop_ns, "NS"))  # type: ignore[no-any-return]

    got = with_async_reader(store, body)
    print("FIGURE answers", got)
    assert got == expected
    assert ["Conflict", "botwire: set of key 'k' in"] in got
    assert store.usage(loop_ns).keys == store.usage(sync_ns).keys
    # (bytes may differ by a digit: the kept idempotent answer holds a version)


def test_a_refused_write_leaves_the_only_connection_usable(make_store: MakeStore) -> None:
    store = make_store(max_size=1, limits=Limits(max_keys=1), async_writes=True)
    ns = f"refused-{uuid.uuid4().hex[:8]}"

    async def body(writer: Any) -> Any:
        await writer.batch(ns, [Op("set", "a", value="1")])
        with pytest.raises(QuotaExceeded, match=r"limit of 1 keys"):
            await writer.batch(ns, [Op("set", "b", value="1")])
        with pytest.raises(Conflict):
            await writer.batch(ns, [Op("set", "a", value="2", if_absent=True)])
        return await writer.batch(ns, [Op("incr", "a")])

    assert with_async_reader(store, body)[0]["value"] == 2
    assert store.get(ns, "b") is None
    assert store.usage(ns).keys == 1


def test_waiting_for_a_write_connection_is_bounded_by_the_timeout(make_store: MakeStore) -> None:
    store = make_store(max_size=1, timeout=0.5, async_writes=True)
    ns = f"wait-{uuid.uuid4().hex[:8]}"

    async def body(writer: Any) -> tuple[float, Any]:
        await writer._write_gate.acquire()  # the only slot, as a stuck write would hold it
        t0 = time.monotonic()
        with pytest.raises(Unavailable, match="no connection") as caught:
            await writer.batch(ns, [Op("set", "k", value="1")])
        waited = time.monotonic() - t0
        assert caught.value.__cause__ is not None  # the driver's (or pool's) exception
        writer._write_gate.release()
        return waited, await writer.batch(ns, [Op("set", "k", value="2")])

    waited, done = with_async_reader(store, body)
    print(f"FIGURE waited {waited:.2f} s for a write connection (timeout 0.5 s)")
    assert 0.4 < waited < 2
    assert done[0]["version"] > 0
    assert store.get(ns, "k").value == 2  # type: ignore[union-attr]


def test_http_writes_survive_connections_killed_by_the_server(postgres_url: str) -> None:
    """Connections the database dropped (a restart, a failover) are lost before COMMIT was
    sent: the write is retried on a fresh connection, never answered 503."""
    ns = f"async-{uuid.uuid4().hex[:8]}"
    on_loop = {"BOTWIRE_PG_ASYNC_WRITES": "1"}
    with (
        running_server(database=postgres_url, env=on_loop) as s,
        httpx.Client(base_url=s.url) as http,
    ):
        assert http.put(key_url(ns, "k"), json={"value": 0}).status_code == 200
        for i in range(1, 4):
            assert terminate_backends(postgres_url) >= 1
            put = http.put(key_url(ns, "k"), json={"value": i})
            assert put.status_code == 200, put.text
            patched = http.patch(key_url(ns, "l"), json={"append": [i]})
            assert patched.status_code == 200, patched.text
        assert http.get(key_url(ns, "k")).json()["value"] == 3
        assert http.get(key_url(ns, "l")).json()["value"] == [1, 2, 3]
        metrics = http.get("/metrics").text
        assert not [
            line for line in metrics.splitlines() if line.startswith("botwire_store_errors_total{")
        ]


@pytest.mark.parametrize("writers", [1, 8])
def test_namespace_lock_hold_time(
    make_store: MakeStore, writers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prints how long a write holds its namespace's row lock, seen from the client: from the
    lock's row arriving to the COMMIT's answer (the half round trips before and after about
    cancel). A figure, never a timed assertion; the answers must all be right."""
    from botwire_server.storage import _pg_write

    store = make_store(max_size=writers, async_writes=True)
    ns = f"hold-{uuid.uuid4().hex[:8]}"
    granted: dict[int, float] = {}
    held: list[float] = []
    lock, write = _pg_write.AsyncPgTx.lock, _pg_write.write_async

    async def timed_lock(self: Any, sql: str, params: Any) -> Any:
        row = await lock(self, sql, params)
        granted[id(asyncio.current_task())] = time.perf_counter()
        return row

    async def timed_write(*args: Any, **kw: Any) -> Any:
        result = await write(*args, **kw)
        held.append(time.perf_counter() - granted.pop(id(asyncio.current_task())))
        return result

    monkeypatch.setattr(_pg_write.AsyncPgTx, "lock", timed_lock)
    import botwire_server.storage._pg_async as pg_async

    monkeypatch.setattr(pg_async, "write_async", timed_write)

    async def body(writer: Any) -> list[int]:
        async def one(w: int) -> int:
            for i in range(50):
                await writer.batch(ns, [Op("set", f"k{w}-{i}", value=str(i))])
            return 50

        return await asyncio.gather(*(one(w) for w in range(writers)))

    t0 = time.perf_counter()
    assert sum(with_async_reader(store, body)) == 50 * writers
    wall = time.perf_counter() - t0
    held.sort()
    median, p90 = held[len(held) // 2], held[int(len(held) * 0.9)]
    print(
        f"FIGURE namespace lock held per SET, {writers} writer(s) on one namespace: median "
        f"{median * 1e3:.2f} ms, p90 {p90 * 1e3:.2f} ms; {50 * writers / wall:.0f} SET/s"
    )
    assert store.usage(ns).keys == 50 * writers


@pytest.mark.parametrize(("env", "on_loop"), [(None, True), ("1", True), ("0", False)])
def test_the_server_writes_on_the_event_loop_by_default(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, env: str | None, on_loop: bool
) -> None:
    """Measured 1.6-2.3x the thread pool's writes per second on a quiet machine (issue 22):
    the server's default; ``BOTWIRE_PG_ASYNC_WRITES=0`` keeps the thread pool."""
    from botwire_server.settings import Settings
    from botwire_server.storage._open import open_store

    if env is None:
        monkeypatch.delenv("BOTWIRE_PG_ASYNC_WRITES", raising=False)
    else:
        monkeypatch.setenv("BOTWIRE_PG_ASYNC_WRITES", env)
    store = open_store(Settings.from_env(database=postgres_url))
    try:
        assert isinstance(store, PostgresStore)
        assert store.async_writes is on_loop
    finally:
        store.close()


def test_a_write_is_two_calls_into_the_driver(
    make_store: MakeStore, ns: str, sent: list[str]
) -> None:
    """The statements of a write are sent in two batches (the lock with its prefetched reads,
    then the writes with COMMIT), not one driver call per statement: psycopg's pipeline mode
    flushed and polled at each of ~7 ``execute`` calls, ~2x the client CPU per write."""
    calls = sent
    store = make_store(async_writes=True)

    async def body(writer: Any) -> list[int]:
        counts = []
        for ops in (
            [Op("set", "k", value="1")],
            [Op("set", "k", value="2")],
            [Op("append", "l", items=("1",))],
            [Op("incr", "n")],
        ):
            calls.clear()
            await writer.batch(ns, ops)
            counts.append(len(calls))
        return counts

    assert with_async_reader(store, body) == [2, 2, 2, 2], calls
    assert calls[0].startswith("BEGIN") and calls[-1].endswith("COMMIT")
