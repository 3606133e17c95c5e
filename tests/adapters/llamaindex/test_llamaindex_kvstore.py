"""BotWireKVStore: the BaseKVStore contract, collections, and real LlamaIndex stores."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core import Document
from llama_index.core.data_structs.data_structs import IndexList
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore

from botwire import Memory
from botwire_llamaindex import KV_KEY_PREFIX, BotWireKVStore

AWKWARD = ["data", "a/b", "a%2Fb", "%", "/", "a b", "🙂", "..", "x#y?z", ""]


def test_put_get_delete(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    assert kv.get("k") is None
    kv.put("k", {"v": 1, "nested": {"l": [1, 2.5, None]}})
    assert kv.get("k") == {"v": 1, "nested": {"l": [1, 2.5, None]}}
    kv.put("k", {"v": 2})
    assert kv.get("k") == {"v": 2}
    assert kv.delete("k") is True
    assert kv.delete("k") is False
    assert kv.get("k") is None


@pytest.mark.parametrize("collection", AWKWARD)
def test_collections_are_separate_and_round_trip(memory: Memory, collection: str) -> None:
    kv = BotWireKVStore(memory=memory)
    kv.put("key", {"c": "default"})
    for other in AWKWARD:
        if other != collection:
            kv.put("key", {"c": other}, collection=other)
    kv.put("key", {"c": collection}, collection=collection)
    kv.put("sub/key", {"c": collection, "sub": True}, collection=collection)
    assert kv.get_all(collection) == {
        "key": {"c": collection},
        "sub/key": {"c": collection, "sub": True},
    }
    assert kv.get("key", collection=collection) == {"c": collection}
    assert all(k.startswith(KV_KEY_PREFIX) for k in memory.list())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    collection=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
    ),
    key=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
    ),
)
def test_any_collection_and_key_round_trip(memory: Memory, collection: str, key: str) -> None:
    kv = BotWireKVStore(memory=memory)
    kv.put(key, {"k": key}, collection=collection)
    assert kv.get(key, collection=collection) == {"k": key}
    assert kv.get_all(collection) == {key: {"k": key}}
    assert kv.delete(key, collection=collection)


def test_put_all_any_batch_size(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    pairs = [(f"k{i}", {"i": i}) for i in range(25)]
    kv.put_all(pairs, collection="c", batch_size=1)
    kv.put_all(pairs[:10], collection="d", batch_size=4)
    kv.put_all(pairs, collection="e", batch_size=100)
    assert kv.get_all("c") == dict(pairs)
    assert kv.get_all("d") == dict(pairs[:10])
    assert kv.get_all("e") == dict(pairs)


def test_get_all_spans_read_batches(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    kv.put_all([(f"k{i:04d}", {"i": i}) for i in range(1100)], batch_size=300)
    got = kv.get_all()
    assert len(got) == 1100
    assert got["k1099"] == {"i": 1099}


def test_values_must_be_dicts(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    with pytest.raises(TypeError, match="must be a dict"):
        kv.put("k", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_async_methods(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)

    async def run() -> None:
        assert await kv.aget("k", collection="a/b") is None
        await kv.aput("k", {"v": 1}, collection="a/b")
        await kv.aput_all([("x", {"v": 2}), ("y", {"v": 3})], collection="a/b", batch_size=2)
        assert await kv.aget("k", collection="a/b") == {"v": 1}
        assert await kv.aget_all("a/b") == {"k": {"v": 1}, "x": {"v": 2}, "y": {"v": 3}}
        results = await asyncio.gather(*(kv.adelete(k, collection="a/b") for k in "kxyz"))
        assert results == [True, True, True, False]
        assert await kv.aget_all("a/b") == {}

    asyncio.run(run())
    assert kv.get_all("a/b") == {}


def test_ttl_applies(memory: Memory) -> None:
    BotWireKVStore(memory=memory, ttl=60).put("k", {"v": 1})
    entry = memory.entry(memory.list()[0])
    assert entry is not None
    assert entry.expires_at is not None


def test_under_a_real_docstore(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    docstore = KVDocumentStore(kv, namespace="docs", batch_size=3)
    docs = [Document(text=f"text {i}", doc_id=f"d{i}", metadata={"i": i}) for i in range(7)]
    docstore.add_documents(docs)
    fresh = KVDocumentStore(BotWireKVStore(memory=memory), namespace="docs")
    assert fresh.document_exists("d3")
    assert fresh.get_document("d3").get_content() == "text 3"  # type: ignore[union-attr]
    assert fresh.get_document("d3").metadata == {"i": 3}  # type: ignore[union-attr]
    assert len(fresh.docs) == 7
    assert fresh.get_document_hash("d1") == docs[1].hash
    fresh.delete_document("d1")
    assert not docstore.document_exists("d1")
    assert len(docstore.docs) == 6


def test_under_a_real_docstore_async(memory: Memory) -> None:
    docstore = KVDocumentStore(BotWireKVStore(memory=memory), namespace="adocs")

    async def run() -> None:
        await docstore.async_add_documents(
            [Document(text="a", doc_id="a"), Document(text="b", doc_id="b")]
        )
        assert await docstore.adocument_exists("a")
        doc = await docstore.aget_document("b")
        assert doc is not None
        assert doc.get_content() == "b"
        await docstore.adelete_document("a")
        assert not await docstore.adocument_exists("a")

    asyncio.run(run())


def test_under_a_real_index_store(memory: Memory) -> None:
    store = KVIndexStore(BotWireKVStore(memory=memory))
    struct = IndexList(index_id="idx-1", nodes=["n1", "n2"])
    store.add_index_struct(struct)
    loaded = KVIndexStore(BotWireKVStore(memory=memory)).get_index_struct("idx-1")
    assert isinstance(loaded, IndexList)
    assert loaded.nodes == ["n1", "n2"]
    assert [s.index_id for s in store.index_structs()] == ["idx-1"]
    store.delete_index_struct("idx-1")
    assert store.index_structs() == []


def test_index_built_in_one_process_loads_in_another(run_script, namespace: str) -> None:
    built = json.loads(run_script("li_proc_index.py", namespace, "build").stdout.splitlines()[-1])
    assert built == {"index_id": "summary"}
    loaded = json.loads(run_script("li_proc_index.py", namespace, "load").stdout.splitlines()[-1])
    assert loaded == {
        "texts": ["Botwire keeps agent memory.", "Serverless functions forget."],
        "ref_docs": ["d1", "d2"],
    }


def test_large_put_all_is_split_to_fit_request_limits(memory: Memory) -> None:
    kv = BotWireKVStore(memory=memory)
    big = [(f"doc-{i}", {"text": str(i) * 600_000}) for i in range(10)]
    kv.put_all(big, batch_size=5000)
    assert kv.get_all() == dict(big)
