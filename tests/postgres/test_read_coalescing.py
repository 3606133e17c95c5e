"""Issue 22: concurrent whole-value reads on the event loop share one statement
(``storage/_pg_reads.ReadGroup``, ``Engine.read_many_query``) and each still gets exactly what
its own read returns: strings, arrays, lists (trimmed ones too), missing and expired keys,
hostile keys, the same key name in two namespaces, a write finished just before, a lost
connection in the middle of a batch, reads cancelled while they wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from support.postgres import terminate_backends

from botwire import Memory
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
T = TypeVar("T")

HOSTILE = "k'%s?$1\\ \u00e9,{}"


def _with_reader(store: PostgresStore, body: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        reader = store.async_reader()
        await reader.open()
        try:
            # a read left waiting (a lane never freed) fails here instead of hanging the suite
            return await asyncio.wait_for(body(reader), 60)
        finally:
            await reader.close()

    return asyncio.run(main())


def _fill(store: PostgresStore, ns: str) -> list[tuple[str, str]]:
    a, b = Memory(ns, store=store), Memory(ns + "-b", store=store)
    a.set("v", {"a": [1, "é", None]})
    b.set("v", "the other namespace's v")
    a.set("arr", [1, 2, 3])
    a.append("l", *range(30))
    a.append("trimmed", *range(10), max_len=3)  # head > 0: leftover rows must not be read
    a.set("empty", [])
    a.append("one", None)
    a.set(HOSTILE, HOSTILE)
    a.set("gone", 1, ttl=0.01)
    time.sleep(0.05)
    keys = ["v", "arr", "l", "trimmed", "empty", "one", HOSTILE, "gone", "missing"]
    return [(ns, k) for k in keys] + [(ns + "-b", "v"), (ns + "-b", "missing")]


def test_concurrent_reads_share_statements_and_each_gets_its_own_answer(
    make_store: MakeStore, ns: str
) -> None:
    store = make_store()
    pairs = _fill(store, ns) * 20  # 220 reads at once, every pair 20 times

    async def body(reader: Any) -> tuple[list[Any], list[Any], int, int]:
        jsons = await asyncio.gather(*(reader.get_json(n, k) for n, k in pairs))
        entries = await asyncio.gather(*(reader.get(n, k) for n, k in pairs))
        return jsons, entries, reader.reads.statements, reader.reads.reads

    jsons, entries, statements, reads = _with_reader(store, body)
    assert jsons == [store.get_json(n, k) for n, k in pairs]
    assert entries == [store.get(n, k) for n, k in pairs]
    assert reads == 2 * len(pairs)
    # lanes=2: two reads go alone, then the waiting ones go up to 64 per statement
    assert statements <= 2 * (2 + len(pairs) // 64 + 2), statements
    assert jsons[0][0] == '{"a":[1,"é",null]}' and jsons[9][0] == '"the other namespace\'s v"'
    assert jsons[3][0] == "[7,8,9]" and jsons[7] is None and jsons[8] is None


def test_a_lone_read_is_sent_at_once_by_itself(make_store: MakeStore, ns: str) -> None:
    store = make_store()
    Memory(ns, store=store).set("k", 1)

    async def body(reader: Any) -> tuple[Any, int, int]:
        found = await reader.get_json(ns, "k")
        return found, reader.reads.statements, reader.reads._running

    found, statements, running = _with_reader(store, body)
    assert found[0] == "1" and statements == 1 and running == 0


def test_a_read_sees_the_write_that_finished_before_it(make_store: MakeStore, ns: str) -> None:
    """Each writer reads its key back while 100 other reads keep the lanes busy: a read that
    waited for a batch is still sent after the write it follows committed."""
    store = make_store(async_writes=True)

    async def body(reader: Any) -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []

        async def writer(w: int) -> None:
            for i in range(15):
                await reader.batch(ns, [_set(f"w{w}", str(i))])
                found = await reader.get_json(ns, f"w{w}")
                seen.append((i, int(found[0])))

        async def noise() -> None:
            for _ in range(30):
                await reader.get_json(ns, "w0")

        await asyncio.gather(*(writer(w) for w in range(4)), *(noise() for _ in range(10)))
        assert reader.reads.statements < reader.reads.reads  # reads did go together
        return seen

    seen = _with_reader(store, body)
    assert len(seen) == 60 and all(got == wrote for wrote, got in seen), seen


def _set(key: str, value: str) -> Any:
    from botwire.store import Op

    return Op("set", key, value=value)


def test_a_batch_that_loses_its_connection_is_retried_for_every_read(
    make_store: MakeStore, ns: str, postgres_url: str
) -> None:
    store = make_store()
    Memory(ns, store=store).set("k", "v")

    async def body(reader: Any) -> tuple[list[Any], list[Any]]:
        before = await asyncio.gather(*(reader.get_json(ns, "k") for _ in range(50)))
        assert await asyncio.to_thread(terminate_backends, postgres_url) >= 1
        after = await asyncio.gather(*(reader.get_json(ns, "k") for _ in range(50)))
        return before, after

    before, after = _with_reader(store, body)
    assert {f[0] for f in before} == {f[0] for f in after} == {'"v"'}


def test_reads_cancelled_while_waiting_free_their_place(make_store: MakeStore, ns: str) -> None:
    store = make_store()
    Memory(ns, store=store).set("k", "v")

    async def body(reader: Any) -> tuple[int, list[Any], int]:
        tasks = [asyncio.create_task(reader.get_json(ns, "k")) for _ in range(100)]
        await asyncio.sleep(0)  # all of them queued or sent
        for t in tasks[10::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(d, asyncio.CancelledError) for d in done)
        answers = [d for d in done if not isinstance(d, BaseException)]
        # nothing is left holding a lane: the next read goes at once, alone
        sent = reader.reads.statements
        await reader.get_json(ns, "k")
        return cancelled, answers, reader.reads.statements - sent + reader.reads._running

    cancelled, answers, after = _with_reader(store, body)
    assert cancelled == 45 and len(answers) == 55 and {a[0] for a in answers} == {'"v"'}
    assert after == 1
