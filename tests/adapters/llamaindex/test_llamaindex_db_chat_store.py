"""BotWireAsyncDBChatStore: every AsyncDBChatStore method, and llama_index Memory on it."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import Memory as LlamaMemory
from llama_index.core.storage.chat_store.base_db import MessageStatus

from botwire import Memory
from botwire_llamaindex import MEMORY_KEY_PREFIX, BotWireAsyncDBChatStore

ACTIVE, ARCHIVED = MessageStatus.ACTIVE, MessageStatus.ARCHIVED


def msg(text: str, role: MessageRole = MessageRole.USER) -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


def test_every_method(memory: Memory) -> None:
    store = BotWireAsyncDBChatStore(memory=memory)

    async def run() -> None:
        assert await store.get_messages("s") == []
        assert await store.count_messages("s") == 0
        assert await store.get_keys() == []
        await store.add_message("s", msg("0"))
        await store.add_messages("s", [msg(str(i)) for i in range(1, 6)])
        await store.add_messages("s", [])
        assert texts(await store.get_messages("s")) == ["0", "1", "2", "3", "4", "5"]
        assert texts(await store.get_messages("s", limit=2)) == ["0", "1"]
        assert texts(await store.get_messages("s", offset=4)) == ["4", "5"]
        assert texts(await store.get_messages("s", offset=1, limit=2)) == ["1", "2"]

        assert texts(await store.archive_oldest_messages("s", 2)) == ["0", "1"]
        assert await store.count_messages("s") == 4
        assert await store.count_messages("s", status=ARCHIVED) == 2
        assert await store.count_messages("s", status=None) == 6
        assert texts(await store.get_messages("s", status=ARCHIVED)) == ["0", "1"]
        assert texts(await store.get_messages("s", status=None)) == [str(i) for i in range(6)]
        assert texts(await store.get_messages("s", status=None, offset=1, limit=3)) == [
            "1",
            "2",
            "3",
        ]

        assert texts(await store.delete_oldest_messages("s", 1)) == ["2"]
        assert texts(await store.get_messages("s")) == ["3", "4", "5"]
        deleted = await store.delete_message("s", 1)
        assert deleted is not None
        assert deleted.content == "4"
        assert await store.delete_message("s", 9) is None
        assert texts(await store.get_messages("s")) == ["3", "5"]

        await store.add_message("s", msg("late archive"), status=ARCHIVED)
        assert texts(await store.get_messages("s", status=ARCHIVED)) == ["0", "1", "late archive"]
        await store.add_message("t", msg("other session"))
        assert sorted(await store.get_keys()) == ["s", "t"]

        await store.delete_messages("s", status=ARCHIVED)
        assert await store.count_messages("s", status=ARCHIVED) == 0
        assert texts(await store.get_messages("s")) == ["3", "5"]

        await store.set_messages("s", [msg("x"), msg("y")])
        assert texts(await store.get_messages("s", status=None)) == ["x", "y"]
        await store.set_messages("s", [msg("old")], status=ARCHIVED)
        assert await store.count_messages("s") == 0
        assert texts(await store.get_messages("s", status=ARCHIVED)) == ["old"]

        await store.delete_messages("s")
        assert await store.count_messages("s", status=None) == 0
        assert await store.get_keys() == ["t"]
        assert await store.archive_oldest_messages("t", 0) == []
        assert texts(await store.archive_oldest_messages("t", 10)) == ["other session"]
        assert await store.archive_oldest_messages("t", 1) == []
        assert await store.delete_oldest_messages("missing", 3) == []

    asyncio.run(run())


def test_session_keys_may_be_any_string(memory: Memory) -> None:
    store = BotWireAsyncDBChatStore(memory=memory)
    keys = ["a/active", "a/archived/x", "🙂", "", "100%/"]

    async def run() -> None:
        for k in keys:
            await store.add_message(k, msg(k))
            await store.archive_oldest_messages(k, 1)
            await store.add_message(k, msg(k + "!"))
        assert sorted(await store.get_keys()) == sorted(keys)
        for k in keys:
            assert texts(await store.get_messages(k, status=None)) == [k, k + "!"]

    asyncio.run(run())
    assert all(k.startswith(MEMORY_KEY_PREFIX) for k in memory.list())


def test_archive_keeps_messages_appended_meanwhile(memory: Memory) -> None:
    """archive_oldest_messages is guarded by the active list's version: appends that
    race with it are never lost or archived out of order."""
    store = BotWireAsyncDBChatStore(memory=memory)

    async def run() -> None:
        await store.add_messages("s", [msg(f"m{i}") for i in range(10)])

        async def writer() -> None:
            for i in range(10, 60):
                await store.add_message("s", msg(f"m{i}"))

        async def archiver() -> None:
            for _ in range(20):
                await store.archive_oldest_messages("s", 2)
                await asyncio.sleep(0)

        await asyncio.gather(writer(), archiver())
        everything = texts(await store.get_messages("s", status=None))
        assert everything == [f"m{i}" for i in range(60)]
        assert await store.count_messages("s", status=ARCHIVED) == 40

    asyncio.run(run())


def test_bad_status_is_named(memory: Memory) -> None:
    store = BotWireAsyncDBChatStore(memory=memory)
    with pytest.raises(ValueError, match="unknown message status"):
        asyncio.run(store.add_message("s", msg("x"), status="deleted"))  # type: ignore[arg-type]


def test_llama_index_memory_flushes_to_the_archive(memory: Memory) -> None:
    store = BotWireAsyncDBChatStore(memory=memory)
    mem = LlamaMemory.from_defaults(
        session_id="chat-1", chat_store=store, token_limit=60, token_flush_size=20
    )

    async def run() -> None:
        for i in range(12):
            await mem.aput(msg(f"message number {i} with a few words", MessageRole.USER))
        active = await store.get_messages("chat-1")
        archived = await store.get_messages("chat-1", status=ARCHIVED)
        assert archived, "Memory never archived anything"
        assert len(active) + len(archived) == 12
        assert texts(archived + active) == [
            f"message number {i} with a few words" for i in range(12)
        ]
        # A new Memory over the same store (a new invocation) sees the same queue.
        again = LlamaMemory.from_defaults(session_id="chat-1", chat_store=store, token_limit=60)
        assert texts(await again.aget_all(status=ACTIVE)) == texts(active)
        assert texts(await again.aget_all()) == texts(archived + active)

    asyncio.run(run())


def test_memory_from_defaults_with_chat_history(memory: Memory) -> None:
    """from_defaults(chat_history=...) runs set_messages in its own event loop; later
    calls in another loop must still work."""
    store = BotWireAsyncDBChatStore(memory=memory)
    mem = LlamaMemory.from_defaults(
        session_id="seeded", chat_store=store, chat_history=[msg("seed 1"), msg("seed 2")]
    )
    mem.put(msg("sync put"))
    assert texts(mem.get_all()) == ["seed 1", "seed 2", "sync put"]
    assert texts(asyncio.run(store.get_messages("seeded"))) == ["seed 1", "seed 2", "sync put"]
    mem.reset()
    assert asyncio.run(store.count_messages("seeded", status=None)) == 0


def test_both_chat_stores_share_one_constructor_and_error_naming(
    memory: Memory, memory_url: str, namespace: str
) -> None:
    """The two stores' shared part (botwire_llamaindex._clients.ChatStoreClients): the same
    constructor (namespace, memory, url, token, ttl; a serialized class_name accepted), and
    errors naming the store class, its namespace and the key or session."""
    from botwire_llamaindex import BotWireChatStore

    calls = {  # each store's async read and add
        BotWireChatStore: ("key", "aget_messages", "async_add_message"),
        BotWireAsyncDBChatStore: ("session", "get_messages", "add_message"),
    }
    for cls, (noun, get, add) in calls.items():
        store = cls(namespace + "-x", memory=memory, ttl=3)  # another namespace, same backend
        assert (store.namespace, store.ttl) == (namespace + "-x", 3)
        default = cls(url=memory_url, class_name=cls.class_name())
        assert default.namespace == "llamaindex" and default.url == memory_url
        assert cls(memory=memory).namespace == memory.namespace
        with pytest.raises(TypeError, match="chat store keys must be str, got int"):
            asyncio.run(getattr(store, get)(7))
        where = rf"{cls.__name__}\(namespace='{namespace}-x'\) {noun} 'k'"
        with pytest.raises(TypeError, match=where + ": expected a llama_index ChatMessage"):
            asyncio.run(getattr(store, add)("k", "hello"))
        with pytest.raises(TypeError, match=r"botwire\.Memory"):
            cls(memory=object())  # type: ignore[arg-type]
