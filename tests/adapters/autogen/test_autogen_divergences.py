"""BotWireMemory.query beside autogen_core's ListMemory (issue 19 item 8).

Decided: by default a query returns the memories that share words with it (a persistent memory
only grows, so it bounds what reaches the model); ``match="all"`` is ListMemory's behaviour
exactly: every memory, the query ignored. Both are checked against a real ListMemory.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import UserMessage

from botwire_autogen import BotWireMemory

FACTS = ["Alice prefers green tea", "Bob drinks coffee", "The meeting is on Monday"]
QUERIES = ["What does Alice drink?", "quantum chromodynamics", ""]


def text(s: str) -> MemoryContent:
    return MemoryContent(content=s, mime_type=MemoryMimeType.TEXT, metadata={"src": "test"})


def _plain(m: MemoryContent) -> tuple[Any, Any, type, Any]:
    # strict: MemoryMimeType is a plain Enum, so its str is a different value to a caller
    return m.content, m.mime_type, type(m.mime_type), m.metadata


async def _fill(*memories: Any) -> None:
    for memory in memories:
        for fact in FACTS:
            await memory.add(text(fact))


async def _context_after(memory: Any, message: str) -> list[Any]:
    ctx = BufferedChatCompletionContext(buffer_size=10)
    await ctx.add_message(UserMessage(content=message, source="user"))
    await memory.update_context(ctx)
    return await ctx.get_messages()


def test_match_all_is_list_memory_exactly(memory_url: str, ns: str) -> None:
    async def scenario() -> None:
        ours, reference = BotWireMemory(ns, url=memory_url, match="all"), ListMemory()
        await _fill(ours, reference)
        for q in QUERIES:
            got = (await ours.query(q)).results
            want = (await reference.query(q)).results
            assert [_plain(m) for m in got] == [_plain(m) for m in want], q
        for message in ("Where does Alice live?", "zzz"):
            assert await _context_after(ours, message) == await _context_after(reference, message)
        loaded = BotWireMemory.load_component(ours.dump_component())
        assert [m.content for m in (await loaded.query("zzz")).results] == FACTS
        await loaded.close()
        await ours.close()

    asyncio.run(scenario())


def test_default_ranks_by_shared_words_where_list_memory_returns_all(
    memory_url: str, ns: str
) -> None:
    async def scenario() -> None:
        ours, reference = BotWireMemory(ns, url=memory_url), ListMemory()
        await _fill(ours, reference)
        assert [m.content for m in (await ours.query("Alice tea")).results] == [FACTS[0]]
        assert (await ours.query("quantum chromodynamics")).results == []  # the decided divergence
        assert len((await reference.query("quantum chromodynamics")).results) == 3
        # update_context never leaves the model with nothing: the most recent memories instead.
        messages = await _context_after(ours, "zzz")
        assert all(f in messages[1].content for f in FACTS)
        await ours.close()

    asyncio.run(scenario())


def test_an_unknown_match_is_refused_naming_the_choices(memory_url: str, ns: str) -> None:
    with pytest.raises(ValueError, match=r"use 'words' .* or 'all'"):
        BotWireMemory(ns, url=memory_url, match="semantic")  # type: ignore[arg-type]
