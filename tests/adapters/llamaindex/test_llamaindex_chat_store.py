"""BotWireChatStore: every BaseChatStore method, sync and async, and ChatMemoryBuffer."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.memory import ChatMemoryBuffer

from botwire import Memory
from botwire_llamaindex import CHAT_KEY_PREFIX, BotWireChatStore


def msg(text: str, role: MessageRole = MessageRole.USER) -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage] | None) -> list[str | None]:
    assert messages is not None
    return [m.content for m in messages]


def test_every_sync_method(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)
    assert store.get_messages("k") == []
    assert store.get_keys() == []
    store.set_messages("k", [msg("a"), msg("b")])
    store.add_message("k", msg("c", MessageRole.ASSISTANT))
    store.add_message("other", msg("x"))
    assert texts(store.get_messages("k")) == ["a", "b", "c"]
    assert store.get_messages("k")[2].role == MessageRole.ASSISTANT
    assert sorted(store.get_keys()) == ["k", "other"]

    removed = store.delete_message("k", 1)
    assert removed is not None
    assert removed.content == "b"
    assert store.delete_message("k", 5) is None
    assert texts(store.get_messages("k")) == ["a", "c"]

    last = store.delete_last_message("k")
    assert last is not None
    assert last.content == "c"
    assert texts(store.get_messages("k")) == ["a"]

    assert texts(store.delete_messages("k")) == ["a"]
    assert store.delete_messages("k") is None
    assert store.get_messages("k") == []
    assert store.get_keys() == ["other"]
    assert store.delete_last_message("missing") is None
    assert store.delete_message("missing", 0) is None


def test_negative_index_and_set_replaces(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)
    store.set_messages("k", [msg("a"), msg("b"), msg("c")])
    removed = store.delete_message("k", -1)
    assert removed is not None
    assert removed.content == "c"
    store.set_messages("k", [msg("z")])
    assert texts(store.get_messages("k")) == ["z"]
    store.set_messages("k", [])
    assert store.get_messages("k") == []


def test_delete_last_message_is_a_pop(memory: Memory) -> None:
    """The stored list shrinks by one item per call (server-side pop, not a rewrite)."""
    store = BotWireChatStore(memory=memory)
    for i in range(3):
        store.add_message("k", msg(str(i)))
    key = CHAT_KEY_PREFIX + "k"
    assert len(memory.get(key)) == 3
    store.delete_last_message("k")
    assert [item["blocks"][0]["text"] for item in memory.get(key)] == ["0", "1"]


def test_rich_messages_round_trip(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)
    call = ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="t", tool_kwargs={"a": [1, {"b": 2}]})],
        additional_kwargs={"x": 1},
    )
    store.add_message("k", call)
    (got,) = BotWireChatStore(memory=memory).get_messages("k")
    assert got == call


def test_any_key_round_trips(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)
    keys = ["", "a/b", "100%", "🙂 user", "..", "x" * 500]
    for k in keys:
        store.add_message(k, msg(k))
    assert sorted(store.get_keys()) == sorted(keys)
    for k in keys:
        assert texts(store.get_messages(k)) == [k]


def test_max_messages_and_ttl(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory, max_messages=2, ttl=120)
    for i in range(5):
        store.add_message("k", msg(str(i)))
    assert texts(store.get_messages("k")) == ["3", "4"]
    entry = memory.entry(CHAT_KEY_PREFIX + "k")
    assert entry is not None
    assert entry.expires_at is not None
    store.set_messages("k", [msg(str(i)) for i in range(4)])
    assert texts(store.get_messages("k")) == ["2", "3"]


def test_every_async_method(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)

    async def run() -> None:
        assert await store.aget_messages("k") == []
        await store.aset_messages("k", [msg("a"), msg("b")])
        await store.async_add_message("k", msg("c"))
        assert texts(await store.aget_messages("k")) == ["a", "b", "c"]
        assert await store.aget_keys() == ["k"]
        removed = await store.adelete_message("k", 0)
        assert removed is not None
        assert removed.content == "a"
        last = await store.adelete_last_message("k")
        assert last is not None
        assert last.content == "c"
        assert texts(await store.adelete_messages("k")) == ["b"]
        assert await store.adelete_messages("k") is None
        assert await store.aget_keys() == []

    asyncio.run(run())


def test_foreign_value_is_reported(memory: Memory) -> None:
    memory.set(CHAT_KEY_PREFIX + "k", {"not": "a list"})
    store = BotWireChatStore(memory=memory)
    with pytest.raises(TypeError, match="not a list of chat messages"):
        store.get_messages("k")
    with pytest.raises(TypeError, match="not a list of chat messages"):
        store.delete_message("k", 0)


def test_bad_arguments(memory: Memory) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        BotWireChatStore(memory=memory, max_messages=0)
    with pytest.raises(TypeError, match="ChatMessage"):
        BotWireChatStore(memory=memory).add_message("k", "hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"botwire\.Memory"):
        BotWireChatStore(memory=object())  # type: ignore[arg-type]


def test_serializes_and_reloads(memory_url: str, namespace: str) -> None:
    store = BotWireChatStore(namespace, url=memory_url, ttl=5)
    store.add_message("k", msg("hi"))
    data = store.to_dict()
    assert data == {
        "namespace": namespace,
        "url": memory_url,
        "ttl": 5,
        "max_messages": None,
        "class_name": "BotWireChatStore",
    }
    again = BotWireChatStore(**data)
    assert texts(again.get_messages("k")) == ["hi"]


def test_with_chat_memory_buffer(memory: Memory) -> None:
    store = BotWireChatStore(memory=memory)
    buffer = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="u1", token_limit=5000)
    buffer.put(msg("hello"))
    buffer.put(msg("hi there", MessageRole.ASSISTANT))
    asyncio.run(buffer.aput(msg("async put")))
    reloaded = ChatMemoryBuffer.from_defaults(
        chat_store=BotWireChatStore(memory=memory), chat_store_key="u1"
    )
    assert texts(reloaded.get_all()) == ["hello", "hi there", "async put"]
    assert texts(asyncio.run(reloaded.aget())) == ["hello", "hi there", "async put"]
    reloaded.set([msg("only")])
    assert texts(buffer.get()) == ["only"]
    reloaded.reset()
    assert buffer.get_all() == []


def test_async_memory_serves_async_methods_only(memory: Memory) -> None:
    async def run() -> None:
        store = BotWireChatStore(memory=memory.as_async())
        await store.async_add_message("k", msg("hi"))
        assert texts(await store.aget_messages("k")) == ["hi"]
        with pytest.raises(TypeError, match="AsyncMemory"):
            store.get_messages("k")

    asyncio.run(run())
    assert texts(BotWireChatStore(memory=memory).get_messages("k")) == ["hi"]
