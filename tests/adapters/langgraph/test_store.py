"""``BotWireStore`` (LangGraph ``BaseStore``) on a real botwire backend, sync and async."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)

from botwire import Memory
from botwire_langgraph import BotWireStore

WEIRD = ["a/b", "a%2Fb", "%", "x y", "emoji-🦜", "q?#&", "a:b", "back\\slash", "*"]


@pytest.fixture
def store(memory_url: str, namespace: str) -> BotWireStore:
    return BotWireStore(Memory(namespace, url=memory_url))


def test_put_get_delete_roundtrip(store: BotWireStore) -> None:
    assert store.get(("users", "alice"), "prefs") is None
    store.put(("users", "alice"), "prefs", {"lang": "fr", "n": 1, "tags": ["a"], "x": None})
    item = store.get(("users", "alice"), "prefs")
    assert item is not None
    assert item.value == {"lang": "fr", "n": 1, "tags": ["a"], "x": None}
    assert item.namespace == ("users", "alice")
    assert item.key == "prefs"
    assert isinstance(item.created_at, datetime)
    assert isinstance(item.updated_at, datetime)
    store.delete(("users", "alice"), "prefs")
    assert store.get(("users", "alice"), "prefs") is None


def test_update_keeps_created_at_and_moves_updated_at(store: BotWireStore) -> None:
    store.put(("docs",), "d", {"v": 1})
    first = store.get(("docs",), "d")
    time.sleep(0.01)
    store.put(("docs",), "d", {"v": 2})
    second = store.get(("docs",), "d")
    assert first is not None
    assert second is not None
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


@pytest.mark.parametrize("label", WEIRD)
def test_any_label_and_key_round_trip(store: BotWireStore, label: str) -> None:
    ns = ("root", label, "leaf")
    store.put(ns, label, {"label": label})
    item = store.get(ns, label)
    assert item is not None
    assert item.value == {"label": label}
    assert item.namespace == ns
    assert item.key == label
    # escaping keeps neighbours apart: ("root", "a/b") is not ("root", "a", "b")
    assert store.get(("root", label), "leaf") is None
    found = store.search(("root", label))
    assert [(i.namespace, i.key) for i in found] == [(ns, label)]
    assert store.list_namespaces(prefix=("root", label)) == [ns]


@pytest.mark.parametrize("key", [".", "..", "a.b", "../x", "i/", ""])
def test_item_keys_with_periods_and_slashes(store: BotWireStore, key: str) -> None:
    store.put(("docs",), key, {"key": key})
    item = store.get(("docs",), key)
    assert item is not None
    assert (item.key, item.value) == (key, {"key": key})
    assert [i.key for i in store.search(("docs",))] == [key]


def test_separator_lookalikes_stay_separate(store: BotWireStore) -> None:
    store.put(("a/b",), "k", {"which": "slash label"})
    store.put(("a", "b"), "k", {"which": "two labels"})
    assert store.get(("a/b",), "k").value == {"which": "slash label"}  # type: ignore[union-attr]
    assert store.get(("a", "b"), "k").value == {"which": "two labels"}  # type: ignore[union-attr]
    assert [i.namespace for i in store.search(("a",))] == [("a", "b")]


def test_invalid_namespaces_are_refused(store: BotWireStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("ok", "a.b"), "k", {"v": 1})])
    with pytest.raises(InvalidNamespaceError, match="empty namespace"):
        store.batch([PutOp((), "k", {"v": 1})])


def test_search_filters_limit_offset(store: BotWireStore) -> None:
    for i in range(6):
        store.put(
            ("items", f"g{i % 2}"),
            f"k{i}",
            {"n": i, "kind": "odd" if i % 2 else "even", "meta": {"score": i * 10}},
        )
        time.sleep(0.002)
    assert len(store.search(("items",), limit=100)) == 6
    # newest first
    assert [i.key for i in store.search(("items",), limit=3)] == ["k5", "k4", "k3"]
    assert [i.key for i in store.search(("items",), limit=2, offset=2)] == ["k3", "k2"]

    def keys(f: dict) -> set[str]:
        return {i.key for i in store.search(("items",), filter=f, limit=100)}

    assert keys({"kind": "odd"}) == {"k1", "k3", "k5"}
    assert keys({"n": {"$eq": 2}}) == {"k2"}
    assert keys({"n": {"$ne": 2}}) == {"k0", "k1", "k3", "k4", "k5"}
    assert keys({"n": {"$gt": 3}}) == {"k4", "k5"}
    assert keys({"n": {"$gte": 3}}) == {"k3", "k4", "k5"}
    assert keys({"n": {"$lt": 2}}) == {"k0", "k1"}
    assert keys({"n": {"$lte": 2}}) == {"k0", "k1", "k2"}
    assert keys({"n": {"$gt": 1, "$lt": 4}}) == {"k2", "k3"}
    assert keys({"kind": "even", "n": {"$gte": 2}}) == {"k2", "k4"}
    assert keys({"meta": {"score": {"$gte": 40}}}) == {"k4", "k5"}
    assert keys({"missing": {"$gt": 1}}) == set()
    assert {i.key for i in store.search(("items", "g1"))} == {"k1", "k3", "k5"}
    with pytest.raises(ValueError, match=r"\$regex"):
        store.search(("items",), filter={"n": {"$regex": "x"}})


def test_query_without_index_is_ignored_like_the_reference_stores(store: BotWireStore) -> None:
    # Issue 19 item 8: InMemoryStore (and SqliteStore, PostgresStore) built without an index
    # ignore `query`; tools that always pass one must work on BotWireStore too.
    from langgraph.store.memory import InMemoryStore

    reference = InMemoryStore()
    for s in (store, reference):
        for i in range(4):
            s.put(("items",), f"k{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd"})
    for kwargs in ({}, {"filter": {"kind": "even"}}, {"filter": {"n": {"$gte": 1}}, "limit": 2}):
        got = store.search(("items",), query="kettles", **kwargs)  # type: ignore[arg-type]
        want = reference.search(("items",), query="kettles", **kwargs)  # type: ignore[arg-type]
        without = store.search(("items",), **kwargs)  # type: ignore[arg-type]
        assert [i.key for i in got] == [i.key for i in without]
        assert len(got) == len(want) and all(i.score is None for i in got)
        if "limit" not in kwargs:  # which items a limit keeps depends on each store's order
            assert {i.key for i in got} == {i.key for i in want}
    assert [i.key for i in asyncio.run(store.asearch(("items",), query="kettles"))] == [
        i.key for i in store.search(("items",))
    ]


def test_list_namespaces(store: BotWireStore) -> None:
    for ns in [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "x"),
        ("z", "b", "c"),
        ("users", "1", "prefs"),
    ]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == sorted(
        [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z", "b", "c"), ("users", "1", "prefs")]
    )
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "x")]
    assert store.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("z", "b", "c")]
    assert store.list_namespaces(prefix=("*", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("z", "b", "c"),
    ]
    assert store.list_namespaces(prefix=("a",), suffix=("d",)) == [("a", "b", "d")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("users",), ("z",)]
    assert store.list_namespaces(prefix=("a",), max_depth=2) == [("a", "b"), ("a", "x")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "x")]
    assert store.list_namespaces(prefix=("nope",)) == []


def test_batch_results_in_op_order(store: BotWireStore) -> None:
    results = store.batch(
        [
            PutOp(("b",), "k1", {"v": 1}),
            GetOp(("b",), "k1"),  # reads see the store before the batch's own puts
            PutOp(("b",), "k2", {"v": 2}),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("b",)),)),
        ]
    )
    assert results == [None, None, None, []]
    results = store.batch([GetOp(("b",), "k1"), SearchOp(("b",)), PutOp(("b",), "k1", None)])
    assert results[0].value == {"v": 1}  # type: ignore[union-attr]
    assert sorted(i.key for i in results[1]) == ["k1", "k2"]  # type: ignore[union-attr]
    assert store.get(("b",), "k1") is None


def _expires_at(memory: Memory, key: str) -> float | None:
    entry = memory.entry(key)
    assert entry is not None
    return entry.expires_at


def test_ttl_minutes_default_and_refresh_on_read(memory_url: str, namespace: str) -> None:
    memory = Memory(namespace, url=memory_url)
    store = BotWireStore(memory, ttl={"default_ttl": 10, "refresh_on_read": True})
    assert store.supports_ttl
    store.put(("t",), "default", {"v": 1})
    store.put(("t",), "short", {"v": 1}, ttl=1)
    store.put(("t",), "forever", {"v": 1}, ttl=None)
    now = time.time()
    assert _expires_at(memory, "i/t/default") == pytest.approx(now + 600, abs=5)
    assert _expires_at(memory, "i/t/short") == pytest.approx(now + 60, abs=5)
    assert _expires_at(memory, "i/t/forever") is None

    before = _expires_at(memory, "i/t/short")
    time.sleep(0.05)
    store.get(("t",), "short", refresh_ttl=False)
    assert _expires_at(memory, "i/t/short") == before
    store.get(("t",), "short")  # refreshes
    after_get = _expires_at(memory, "i/t/short")
    assert after_get is not None
    assert before is not None
    assert after_get > before
    time.sleep(0.05)
    store.search(("t",))  # refreshes what it returns
    assert _expires_at(memory, "i/t/short") > after_get  # type: ignore[operator]
    assert store.get(("t",), "short").value == {"v": 1}  # type: ignore[union-attr]


def test_refresh_on_read_can_be_turned_off(memory_url: str, namespace: str) -> None:
    memory = Memory(namespace, url=memory_url)
    store = BotWireStore(memory, ttl={"refresh_on_read": False})
    store.put(("t",), "k", {"v": 1}, ttl=1)
    before = _expires_at(memory, "i/t/k")
    time.sleep(0.05)
    store.get(("t",), "k")
    assert _expires_at(memory, "i/t/k") == before


def test_expired_items_are_invisible(memory_url: str, namespace: str) -> None:
    store = BotWireStore(Memory(namespace, url=memory_url))
    store.put(("t",), "gone", {"v": 1}, ttl=0.5 / 60)  # half a second
    store.put(("t",), "kept", {"v": 1})
    time.sleep(1.0)
    assert store.get(("t",), "gone") is None
    assert [i.key for i in store.search(("t",))] == ["kept"]


def test_async_methods(memory_url: str, namespace: str) -> None:
    store = BotWireStore(Memory(namespace, url=memory_url))

    async def scenario() -> None:
        await store.aput(("u", "bob"), "a", {"n": 1})
        await store.aput(("u", "bob"), "b", {"n": 2}, ttl=5)
        item = await store.aget(("u", "bob"), "a")
        assert item is not None
        assert item.value == {"n": 1}
        found = await store.asearch(("u",), filter={"n": {"$gt": 1}})
        assert [i.key for i in found] == ["b"]
        assert await store.alist_namespaces() == [("u", "bob")]
        await store.adelete(("u", "bob"), "a")
        assert await store.aget(("u", "bob"), "a") is None

    asyncio.run(scenario())
    assert store.get(("u", "bob"), "b").value == {"n": 2}  # type: ignore[union-attr]


def test_constructor_errors_name_the_fix() -> None:
    with pytest.raises(TypeError, match=r"BotWireStore needs memory= to be a botwire\.Memory"):
        BotWireStore({"not": "memory"})  # type: ignore[arg-type]


def test_async_only_store_refuses_sync_calls(memory_url: str, namespace: str) -> None:
    store = BotWireStore(Memory(namespace, url=memory_url).as_async())
    with pytest.raises(TypeError, match=r"BotWireStore was given an AsyncMemory.*memory=Memory"):
        store.get(("a",), "k")

    async def scenario() -> None:
        await store.aput(("a",), "k", {"v": 1})
        assert (await store.aget(("a",), "k")).value == {"v": 1}  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_ttl_refresh_never_overwrites_a_concurrent_put(memory_url: str, namespace: str) -> None:
    """A put from another process lands between a get's read and its TTL refresh: the refresh
    must not bring the old value back."""
    from botwire_langgraph._io import Atomic, _exec_sync
    from botwire_langgraph._store_plans import batch_plan

    memory = Memory(namespace, url=memory_url)
    store = BotWireStore(memory)
    other = BotWireStore(Memory(namespace, url=memory_url))
    store.put(("t",), "k", {"v": "old"}, ttl=5)

    plan = batch_plan([GetOp(("t",), "k")], None)
    req = next(plan)
    interleaved = False
    try:
        while True:
            if isinstance(req, Atomic) and not interleaved:
                other.put(("t",), "k", {"v": "new"}, ttl=5)  # the concurrent writer
                interleaved = True
            try:
                result = _exec_sync(memory, req)
            except Exception as exc:
                req = plan.throw(exc)
            else:
                req = plan.send(result)
    except StopIteration as done:
        results = done.value
    assert interleaved
    assert results[0].value == {"v": "old"}  # what the get read
    assert store.get(("t",), "k").value == {"v": "new"}  # type: ignore[union-attr]


def test_store_inside_a_graph_across_threads(memory_url: str, namespace: str) -> None:
    """Nodes get the store injected; what one thread remembers, another thread reads."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.store.base import BaseStore

    from botwire_langgraph import BotWireSaver

    class S(TypedDict):
        user: str
        visits: int

    def count_visit(state: S, *, store: BaseStore) -> dict[str, int]:
        item = store.get(("users", state["user"]), "profile")
        visits = (item.value["visits"] if item else 0) + 1
        store.put(("users", state["user"]), "profile", {"visits": visits})
        return {"visits": visits}

    builder = StateGraph(S)
    builder.add_node("count_visit", count_visit)
    builder.add_edge(START, "count_visit")
    builder.add_edge("count_visit", END)

    def run(thread: str) -> int:  # a fresh saver, store and graph each time, like a cold start
        graph = builder.compile(
            checkpointer=BotWireSaver(Memory(namespace, url=memory_url)),
            store=BotWireStore(Memory(namespace, url=memory_url)),
        )
        out = graph.invoke({"user": "alice", "visits": 0}, {"configurable": {"thread_id": thread}})
        return int(out["visits"])

    assert [run("t1"), run("t2"), run("t3")] == [1, 2, 3]
