"""BotWireStore / BotWireByteStore beyond the standard suites."""

from __future__ import annotations

import pytest

from botwire import Memory
from botwire_langchain import BotWireByteStore, BotWireStore

AWKWARD_KEYS = ["a#b", "a/b", "a?b=c", "100%", "..", "with space", "emoji-🙂", "ключ", "x:y"]


def test_awkward_keys_round_trip(memory: Memory) -> None:
    store = BotWireStore(memory=memory)
    pairs = [(k, {"k": k}) for k in AWKWARD_KEYS]
    store.mset(pairs)
    assert store.mget(AWKWARD_KEYS) == [{"k": k} for k in AWKWARD_KEYS]
    assert sorted(store.yield_keys()) == sorted(AWKWARD_KEYS)
    assert list(store.yield_keys(prefix="a")) == sorted(
        k for k in AWKWARD_KEYS if k.startswith("a")
    )


def test_values_keep_their_json_type(memory: Memory) -> None:
    store = BotWireStore(memory=memory)
    values = [1, 1.5, True, None, "1", [1, [2]], {"a": {"b": None}}]
    store.mset([(f"k{i}", v) for i, v in enumerate(values)])
    assert store.mget([f"k{i}" for i in range(len(values))]) == values
    assert type(store.mget(["k0"])[0]) is int


def test_stores_persist_across_instances(memory_url: str, namespace: str) -> None:
    BotWireStore(memory=Memory(namespace, url=memory_url)).mset([("k", [0.1, 0.2])])
    fresh = BotWireStore(namespace, url=memory_url)
    assert fresh.mget(["k"]) == [[0.1, 0.2]]
    assert fresh.namespace == namespace


def test_key_prefix_isolates_stores_in_one_namespace(memory: Memory) -> None:
    a = BotWireStore(memory=memory, key_prefix="a/")
    b = BotWireStore(memory=memory, key_prefix="b/")
    a.mset([("k", 1)])
    b.mset([("k", 2)])
    assert a.mget(["k"]) == [1]
    assert b.mget(["k"]) == [2]
    assert list(a.yield_keys()) == ["k"]
    a.mdelete(["k"])
    assert b.mget(["k"]) == [2]
    assert sorted(memory.list()) == ["b/k"]


def test_many_keys_span_batches(memory: Memory) -> None:
    store = BotWireStore(memory=memory)
    pairs = [(f"key-{i:04d}", i) for i in range(1203)]
    store.mset(pairs)
    keys = [k for k, _ in pairs]
    assert store.mget(keys) == list(range(1203))
    assert sum(1 for _ in store.yield_keys()) == 1203
    store.mdelete(keys[:700])
    assert store.mget(keys[699:702]) == [None, 700, 701]


def test_byte_store_rejects_non_bytes(memory: Memory) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        BotWireByteStore(memory=memory).mset([("k", "text")])  # type: ignore[list-item]


def test_byte_store_names_foreign_values(memory: Memory) -> None:
    memory.set("k", {"not": "bytes"})
    with pytest.raises(TypeError, match="not base64 bytes"):
        BotWireByteStore(memory=memory).mget(["k"])


def test_byte_store_serves_an_embedding_cache(memory: Memory) -> None:
    """The access pattern of CacheBackedEmbeddings.from_bytes_store: hashed keys,
    JSON-encoded float vectors as bytes, namespaced key prefix."""
    import hashlib
    import json

    cache = BotWireByteStore(memory=memory)
    texts = ["hello", "world"]
    keys = ["text-embedding-3" + hashlib.sha1(t.encode()).hexdigest() for t in texts]
    assert cache.mget(keys) == [None, None]
    vectors = [[0.1, 0.2], [0.3, 0.4]]
    cache.mset([(k, json.dumps(v).encode()) for k, v in zip(keys, vectors, strict=True)])
    assert [json.loads(b) for b in cache.mget(keys)] == vectors  # type: ignore[arg-type]


def test_non_json_value_is_refused_naming_the_key(memory: Memory) -> None:
    with pytest.raises(TypeError, match="bad"):
        BotWireStore(memory=memory).mset([("bad", {1, 2})])


def test_memory_must_be_a_memory() -> None:
    with pytest.raises(TypeError, match=r"botwire\.Memory"):
        BotWireStore(memory="sqlite:///x.db")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_async_awkward_keys(memory: Memory) -> None:
    store = BotWireStore(memory=memory)
    await store.amset([(k, k) for k in AWKWARD_KEYS])
    assert await store.amget(AWKWARD_KEYS) == AWKWARD_KEYS
    assert sorted([k async for k in store.ayield_keys(prefix="a")]) == sorted(
        k for k in AWKWARD_KEYS if k.startswith("a")
    )
    await store.amdelete(AWKWARD_KEYS)
    assert [k async for k in store.ayield_keys()] == []


@pytest.mark.asyncio
async def test_async_memory_serves_async_methods_only(memory: Memory) -> None:
    store = BotWireStore(memory=memory.as_async())
    await store.amset([("k", 1)])
    assert await store.amget(["k"]) == [1]
    with pytest.raises(TypeError, match="pass memory=Memory"):
        store.mget(["k"])


def test_large_msets_are_split_to_fit_request_limits(memory: Memory) -> None:
    """10 × 600 kB values are more than one batch request should carry; all arrive."""
    store = BotWireStore(memory=memory)
    big = {f"doc-{i}": {"text": str(i) * 600_000} for i in range(10)}
    store.mset(list(big.items()))
    assert store.mget(list(big)) == list(big.values())
