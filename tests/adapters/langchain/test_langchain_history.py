"""BotWireChatHistory used directly (sync and async)."""

from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)

from botwire import InvalidNamespace, Memory
from botwire_langchain import HISTORY_KEY_PREFIX, BotWireChatHistory
from botwire_langchain._clients import namespace_for_session

TOOL_CALL = AIMessage(
    content="",
    tool_calls=[{"name": "remember", "args": {"fact": "x"}, "id": "call_1", "type": "tool_call"}],
)


def _history(memory: Memory, session_id: str = "s1", **kw: object) -> BotWireChatHistory:
    return BotWireChatHistory(session_id, memory=memory, **kw)  # type: ignore[arg-type]


def test_add_read_clear(memory: Memory) -> None:
    history = _history(memory)
    assert history.messages == []
    history.add_messages([SystemMessage("be brief"), HumanMessage("hi")])
    history.add_ai_message("hello")
    history.add_user_message("again")
    assert [(m.type, m.content) for m in history.messages] == [
        ("system", "be brief"),
        ("human", "hi"),
        ("ai", "hello"),
        ("human", "again"),
    ]
    assert "again" in str(history)
    history.clear()
    assert history.messages == []
    assert memory.list() == []


def test_all_message_kinds_round_trip(memory: Memory) -> None:
    history = _history(memory)
    sent = [
        HumanMessage("q", id="m1", additional_kwargs={"lang": "en"}),
        TOOL_CALL,
        ToolMessage("done", tool_call_id="call_1"),
        AIMessage("answer", response_metadata={"model": "fake"}),
    ]
    history.add_messages(sent)
    got = _history(memory).messages
    assert got == sent
    assert got[1].tool_calls[0]["args"] == {"fact": "x"}  # type: ignore[attr-defined]


def test_history_is_a_server_side_list(memory: Memory) -> None:
    history = _history(memory, "s9")
    history.add_messages([HumanMessage("a"), AIMessage("b")])
    stored = memory.get(HISTORY_KEY_PREFIX + "s9")
    assert [item["type"] for item in stored] == ["human", "ai"]
    assert memory.tail(HISTORY_KEY_PREFIX + "s9", 1)[0]["data"]["content"] == "b"
    assert [m.content for m in history.tail(1)] == ["b"]


def test_sessions_in_one_namespace_are_isolated(memory: Memory) -> None:
    a, b = _history(memory, "alice"), _history(memory, "bob")
    a.add_user_message("from alice")
    b.add_user_message("from bob")
    assert [m.content for m in a.messages] == ["from alice"]
    b.clear()
    assert [m.content for m in a.messages] == ["from alice"]
    assert b.messages == []


def test_default_namespace_comes_from_the_session(memory_url: str, namespace: str) -> None:
    history = BotWireChatHistory(namespace, ttl=None, url=memory_url)
    assert history.namespace == namespace
    history.add_user_message("hi")
    assert Memory(namespace, url=memory_url).list() == [HISTORY_KEY_PREFIX + namespace]


@pytest.mark.parametrize("session_id", ["a/b", "with space", "x" * 300, "🙂", "..", "."])
def test_awkward_session_ids_get_a_valid_distinct_namespace(
    session_id: str, memory_url: str
) -> None:
    ns = namespace_for_session(session_id)
    Memory(ns, url=memory_url)  # a valid namespace, or this raises
    assert ns != namespace_for_session(session_id + "!")
    history = BotWireChatHistory(session_id, url=memory_url)
    history.add_user_message("hi")
    assert [m.content for m in BotWireChatHistory(session_id, url=memory_url).messages] == ["hi"]
    history.clear()


def test_namespace_argument_overrides_memory_namespace(memory: Memory, namespace: str) -> None:
    other = namespace + "-other"
    history = BotWireChatHistory("s", memory=memory, namespace=other)
    history.add_user_message("hi")
    assert memory.list() == []
    assert memory.with_namespace(other).list() == [HISTORY_KEY_PREFIX + "s"]


def test_max_messages_keeps_the_newest(memory: Memory) -> None:
    history = _history(memory, max_messages=3)
    for i in range(5):
        history.add_messages([HumanMessage(f"q{i}"), AIMessage(f"a{i}")])
    assert [m.content for m in history.messages] == ["a3", "q4", "a4"]


def test_ttl_is_applied(memory: Memory) -> None:
    history = _history(memory, ttl=3600)
    history.add_user_message("hi")
    entry = memory.entry(history.key)
    assert entry is not None
    assert entry.expires_at is not None
    assert entry.expires_at > entry.updated_at


def test_empty_add_is_a_no_op(memory: Memory) -> None:
    _history(memory).add_messages([])
    assert memory.list() == []


def test_bad_arguments_are_named(memory: Memory) -> None:
    with pytest.raises(ValueError, match="session_id"):
        BotWireChatHistory("", memory=memory)
    with pytest.raises(ValueError, match="max_messages"):
        BotWireChatHistory("s", memory=memory, max_messages=0)
    with pytest.raises(TypeError, match="BaseMessage"):
        _history(memory).add_messages(["not a message"])  # type: ignore[list-item]
    with pytest.raises(InvalidNamespace):
        BotWireChatHistory("s", memory=memory, namespace="bad namespace!")


def test_foreign_value_under_the_key_is_reported(memory: Memory) -> None:
    memory.set(HISTORY_KEY_PREFIX + "s1", {"oops": True})
    with pytest.raises(TypeError, match="not a chat history list"):
        _ = _history(memory).messages


@pytest.mark.asyncio
async def test_async_methods(memory: Memory) -> None:
    history = _history(memory, "async")
    assert await history.aget_messages() == []
    await history.aadd_messages([HumanMessage("hi"), TOOL_CALL])
    await history.aadd_messages([AIMessage("bye")])
    got = await history.aget_messages()
    assert [m.type for m in got] == ["human", "ai", "ai"]
    assert got[1] == TOOL_CALL
    assert [m.content for m in await history.atail(1)] == ["bye"]
    assert history.messages == got  # the sync view sees the async writes
    await history.aclear()
    assert await history.aget_messages() == []


@pytest.mark.asyncio
async def test_async_memory_serves_async_methods_only(memory: Memory) -> None:
    history = BotWireChatHistory("s", memory=memory.as_async())
    await history.aadd_messages([HumanMessage("hi")])
    assert [m.content for m in await history.aget_messages()] == ["hi"]
    assert [m.content for m in _history(memory, "s").messages] == ["hi"]
    with pytest.raises(TypeError, match="AsyncMemory"):
        _ = history.messages


def test_messages_are_stored_without_default_fields_and_old_items_still_read(
    memory: Memory,
) -> None:
    """Issue 22: a message is stored as ``message_to_dict`` without the fields that hold their
    default (about half the bytes of a short turn); items stored in full by earlier versions
    (and by anything else writing LangChain's dict form) read back the same."""
    legacy_tool_calls = AIMessage(
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]
        },
    )
    messages = [
        SystemMessage("be brief"),
        HumanMessage("hi", name="bob", id="m1"),
        TOOL_CALL,
        ToolMessage("42", tool_call_id="call_1", status="error"),
        legacy_tool_calls,
        AIMessage(
            "done", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
        ),
    ]
    history = _history(memory)
    memory.append(HISTORY_KEY_PREFIX + "s1", message_to_dict(HumanMessage("old, in full")))
    history.add_messages(messages)
    stored = memory.get(HISTORY_KEY_PREFIX + "s1")
    assert stored[0] == message_to_dict(HumanMessage("old, in full"))
    # each new item carries its repeat guard (``"r"``, 12 characters, one per message)
    guards = [item.pop("r") for item in stored[1:]]
    assert len(set(guards)) == len(messages) and all(len(g) == 12 for g in guards)
    assert stored[1] == {"type": "system", "data": {"content": "be brief"}}
    assert stored[2] == {"type": "human", "data": {"content": "hi", "name": "bob", "id": "m1"}}
    assert "additional_kwargs" not in stored[3]["data"] and stored[3]["data"]["tool_calls"]
    assert stored[4]["data"]["status"] == "error"
    assert history.messages == [HumanMessage("old, in full"), *messages]
    assert history.tail(2) == messages[-2:]
