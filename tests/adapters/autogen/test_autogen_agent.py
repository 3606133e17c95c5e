"""Real AutoGen agents and teams: memory in the loop, state saved and resumed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import (
    MemoryQueryEvent,
    TextMessage,
    ToolCallExecutionEvent,
)
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.memory import MemoryContent
from autogen_core.models import SystemMessage
from autogen_helpers import call, remember_tool, replay

from botwire import AsyncMemory, Memory
from botwire_autogen import BotWireMemory, delete_state, load_state, save_state


def test_agent_reads_and_writes_memory_in_its_loop(memory_url: str, ns: str) -> None:
    async def scenario() -> dict[str, Any]:
        memory = BotWireMemory(ns, url=memory_url)
        await memory.add(MemoryContent(content="The user's name is Ada", mime_type="text/plain"))
        agent = AssistantAgent(
            "assistant",
            model_client=replay(
                call("c1", "remember", '{"fact": "Ada drinks green tea"}'), "Noted, Ada."
            ),
            tools=[remember_tool(memory)],
            memory=[memory],
            reflect_on_tool_use=True,
        )
        result = await agent.run(task="Hi, I am Ada and I drink green tea")
        context = await agent.model_context.get_messages()
        stored = [c.content for c in await memory.contents()]
        await memory.close()
        return {"messages": result.messages, "context": context, "stored": stored}

    out = asyncio.run(scenario())
    kinds = [type(m) for m in out["messages"]]
    assert MemoryQueryEvent in kinds and ToolCallExecutionEvent in kinds
    query_event = next(m for m in out["messages"] if isinstance(m, MemoryQueryEvent))
    assert [c.content for c in query_event.content] == ["The user's name is Ada"]
    assert any(
        isinstance(m, SystemMessage) and "The user's name is Ada" in m.content
        for m in out["context"]
    )
    assert out["stored"] == ["The user's name is Ada", "Ada drinks green tea"]
    assert isinstance(out["messages"][-1], TextMessage)
    assert out["messages"][-1].content == "Noted, Ada."


def test_agent_state_saved_and_resumed(memory_url: str, ns: str) -> None:
    async def scenario() -> tuple[Any, Any, bool, bool]:
        first = AssistantAgent("assistant", model_client=replay("Hello Ada!"))
        await first.run(task="I am Ada")
        async with AsyncMemory(ns, url=memory_url) as amem:
            version = await save_state(amem, "agent-state", first)
        assert isinstance(version, int)

        second = AssistantAgent("assistant", model_client=replay("You are Ada."))
        with Memory(ns, url=memory_url) as sync:  # a sync client works as the target too
            assert await load_state(sync, "agent-state", second) is True
        before = await first.save_state()
        after = await second.save_state()
        async with AsyncMemory(ns, url=memory_url) as amem:
            assert await delete_state(amem, "agent-state") is True
            missing = await load_state(amem, "agent-state", second)
            deleted_again = await delete_state(amem, "agent-state")
        return before, after, missing, deleted_again

    before, after, missing, deleted_again = asyncio.run(scenario())
    assert after == before
    assert [m["content"] for m in after["llm_context"]["messages"]] == ["I am Ada", "Hello Ada!"]
    assert missing is False and deleted_again is False


def test_team_state_saved_and_resumed(memory_url: str, ns: str) -> None:
    def make_team(*replies: str) -> RoundRobinGroupChat:
        a = AssistantAgent("writer", model_client=replay(*replies))
        b = AssistantAgent("critic", model_client=replay(*replies))
        return RoundRobinGroupChat([a, b], termination_condition=MaxMessageTermination(3))

    async def scenario() -> tuple[Any, Any, list[str]]:
        memory = BotWireMemory(ns, url=memory_url)
        team = make_team("draft one", "looks good")
        await team.run(task="Write a haiku")
        await save_state(memory, "team-state", team)  # a BotWireMemory works as the target
        resumed = make_team("draft two", "better")
        assert await load_state(memory, "team-state", resumed)
        before, after = await team.save_state(), await resumed.save_state()
        more = await resumed.run(task="Again")  # it continues, not restarts
        await memory.close()
        return before, after, [str(m.content) for m in more.messages]

    before, after, more = asyncio.run(scenario())
    assert after == before
    assert more[0] == "Again" and more[1:] == ["draft two", "draft two"]


def test_load_state_refuses_foreign_values(memory_url: str, ns: str) -> None:
    async def scenario() -> None:
        async with AsyncMemory(ns, url=memory_url) as m:
            await m.set("agent-state", ["not", "a", "state"])
            agent = AssistantAgent("assistant", model_client=replay("x"))
            with pytest.raises(TypeError, match="not a saved AutoGen state"):
                await load_state(m, "agent-state", agent)
            with pytest.raises(TypeError, match="expected a namespace"):
                await save_state(42, "k", agent)  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_save_state_by_namespace_uses_botwire_url(
    memory_url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTWIRE_URL", memory_url)

    async def scenario() -> Any:
        agent = AssistantAgent("assistant", model_client=replay("ok"))
        await agent.run(task="remember me")
        await save_state(ns, "s", agent, ttl=3600)
        with Memory(ns, url=memory_url) as m:
            return m.entry("s")

    entry = asyncio.run(scenario())
    assert entry is not None and entry.expires_at is not None
    assert entry.value["type"] == "AssistantAgentState"
