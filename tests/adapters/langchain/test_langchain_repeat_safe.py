"""``add_messages`` is sent repeat-safe (no Idempotency-Key, so the server keeps no replay
record per turn): a retry after a lost answer stores the turn a second time, and every reader
(``messages``, ``tail``, sync and async) must still see each message once. Against a real
server behind a relay that loses answers after the server applied the request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from support.faultproxy import FaultProxy
from support.repeat_safe import records, served_on_file
from support.server import ServerProcess

from botwire import Memory
from botwire_langchain import HISTORY_KEY_PREFIX, BotWireChatHistory


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    with served_on_file(tmp_path_factory, "lc-repeat-safe") as both:
        yield both


def _every_tail_is_a_suffix(history: BotWireChatHistory) -> None:
    everything = history.messages
    for n in range(1, len(everything) + 3):
        assert history.tail(n) == everything[-n:], n


def test_a_turn_applied_twice_reads_once(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    server, db = served
    with FaultProxy(server.port) as proxy, Memory(namespace, url=proxy.url) as m:
        history = BotWireChatHistory("s", memory=m)
        history.add_messages([HumanMessage("hi")])
        proxy.set_script(["drop_after"])  # applied, answer lost, retried: applied twice
        history.add_messages([AIMessage("hello"), HumanMessage("how are you?")])
        assert proxy.counts["drop_after"] == 1
        history.add_user_message("bye")

        stored = Memory(namespace, url=server.url).get(HISTORY_KEY_PREFIX + "s")
        assert [item["data"]["content"] for item in stored] == [
            "hi",
            "hello",
            "how are you?",
            "hello",
            "how are you?",
            "bye",
        ]
        guards = [item["r"] for item in stored]
        assert guards[1:3] == guards[3:5] and len(set(guards)) == 4
        assert all(isinstance(g, str) and len(g) == 12 for g in guards)

        assert [m.content for m in history.messages] == ["hi", "hello", "how are you?", "bye"]
        _every_tail_is_a_suffix(history)
        assert records(db, namespace) == 0  # nothing keyed, nothing recorded


@pytest.mark.asyncio
async def test_async_turn_applied_twice_reads_once(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    server, db = served
    with FaultProxy(server.port) as proxy, Memory(namespace, url=proxy.url) as m:
        history = BotWireChatHistory("a", memory=m)
        proxy.set_script(["drop_after"])
        await history.aadd_messages([HumanMessage("once")])
        assert proxy.counts["drop_after"] == 1
        stored = Memory(namespace, url=server.url).get(HISTORY_KEY_PREFIX + "a")
        assert len(stored) == 2
        assert [m.content for m in await history.aget_messages()] == ["once"]
        assert [m.content for m in await history.atail(1)] == ["once"]
        assert [m.content for m in await history.atail(5)] == ["once"]
        assert records(db, namespace) == 0


def test_a_late_repeat_moves_the_turn_and_every_reader_agrees(memory: Memory) -> None:
    """A retry that lands after another writer's turn: the last copy is the one read (a
    ``tail`` window is a suffix of the list, so it keeps what the whole list keeps)."""
    history = BotWireChatHistory("late", memory=memory)
    key = HISTORY_KEY_PREFIX + "late"
    history.add_messages([HumanMessage("first")])
    history.add_messages([AIMessage("retried")])
    retried = memory.tail(key, 1)[0]
    history.add_messages([HumanMessage("other writer")])
    memory.append(key, retried)  # the retry of "retried", stored late
    history.add_messages([AIMessage("last")])

    assert [m.content for m in history.messages] == ["first", "other writer", "retried", "last"]
    _every_tail_is_a_suffix(history)
    # a window holding only the late copy, then one needing a wider read
    assert [m.content for m in history.tail(2)] == ["retried", "last"]
    assert [m.content for m in history.tail(3)] == ["other writer", "retried", "last"]


def test_repeats_at_the_tail_widen_the_read(memory: Memory) -> None:
    history = BotWireChatHistory("wide", memory=memory)
    key = HISTORY_KEY_PREFIX + "wide"
    history.add_messages([HumanMessage(f"m{i}") for i in range(4)])
    last = memory.tail(key, 1)[0]
    memory.append(key, last, last, last)  # three retries of the last turn
    assert len(memory.get(key)) == 7
    assert [m.content for m in history.tail(2)] == ["m2", "m3"]
    assert [m.content for m in history.tail(4)] == ["m0", "m1", "m2", "m3"]
    assert [m.content for m in history.tail(10)] == ["m0", "m1", "m2", "m3"]


def test_items_without_a_guard_are_all_kept(memory: Memory) -> None:
    """Items stored by earlier versions (no ``"r"``) are never taken for repeats."""
    history = BotWireChatHistory("old", memory=memory)
    key = HISTORY_KEY_PREFIX + "old"
    same = {"type": "human", "data": {"content": "again"}}
    memory.append(key, same, same)
    history.add_messages([AIMessage("new")])
    assert [m.content for m in history.messages] == ["again", "again", "new"]
    assert [m.content for m in history.tail(3)] == ["again", "again", "new"]


def test_max_messages_with_a_repeat_keeps_the_newest(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    """The trim rides with each append, the retry's too: the window holds ``max_messages``
    items, a repeat among them read once."""
    server, _ = served
    with FaultProxy(server.port) as proxy, Memory(namespace, url=proxy.url) as m:
        history = BotWireChatHistory("cap", memory=m, max_messages=3)
        for i in range(3):
            history.add_user_message(f"m{i}")
        proxy.set_script(["drop_after"])
        history.add_ai_message("m3")
        assert proxy.counts["drop_after"] == 1
        stored = Memory(namespace, url=server.url).get(HISTORY_KEY_PREFIX + "cap")
        assert [item["data"]["content"] for item in stored] == ["m2", "m3", "m3"]
        assert [x.content for x in history.messages] == ["m2", "m3"]
        history.add_user_message("m4")
        assert [x.content for x in history.messages] == ["m3", "m4"]
