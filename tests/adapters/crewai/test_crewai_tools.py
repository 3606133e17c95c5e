"""memory_tools(): the four CrewAI tools, alone and inside real agents with a scripted LLM."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool
from crewai_helpers import FINAL, ScriptedLLM, react, tool_call

import botwire_crewai
from botwire import InvalidNamespace, Memory
from botwire_crewai import (
    ForgetInput,
    ListMemoriesInput,
    RecallInput,
    RememberInput,
    memory_tools,
)


def by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


@pytest.fixture
def memory(memory_url: str, ns: str) -> Any:
    with Memory(ns, url=memory_url) as m:
        yield m


def test_botwire_memory_reexport_is_this_function() -> None:
    from botwire.memory import memory_tools as reexported

    assert reexported is botwire_crewai.memory_tools


def test_tools_have_names_and_typed_schemas(memory_url: str, ns: str) -> None:
    tools = by_name(memory_tools(ns, url=memory_url))
    assert list(tools) == ["remember", "recall", "list_memories", "forget"]
    assert all(isinstance(t, BaseTool) for t in tools.values())
    assert tools["remember"].args_schema is RememberInput
    assert tools["recall"].args_schema is RecallInput
    assert tools["list_memories"].args_schema is ListMemoriesInput
    assert tools["forget"].args_schema is ForgetInput
    schema = RememberInput.model_json_schema()
    assert schema["required"] == ["key", "value"]
    assert {s["type"] for s in schema["properties"]["value"]["anyOf"]} == {
        "string",
        "integer",
        "number",
        "boolean",
        "array",
        "object",
    }
    assert ListMemoriesInput.model_json_schema().get("required", []) == []


def test_remember_recall_list_forget(memory_url: str, ns: str, memory: Memory) -> None:
    t = by_name(memory_tools(ns, url=memory_url))
    assert t["list_memories"].run() == "No memories stored."
    assert t["remember"].run(key="topic", value="solar panels") == "Remembered 'topic'."
    assert t["remember"].run(key="sources", value={"urls": ["a", "b"], "n": 2}) == (
        "Remembered 'sources'."
    )
    # Native types are stored, not strings.
    assert memory.get("sources") == {"urls": ["a", "b"], "n": 2}
    assert t["recall"].run(key="topic") == "solar panels"
    assert json.loads(t["recall"].run(key="sources")) == {"urls": ["a", "b"], "n": 2}
    assert t["list_memories"].run() == "2 memories: 'sources', 'topic'"
    assert t["list_memories"].run(prefix="to") == "1 memory starting with 'to': 'topic'"
    missing = t["recall"].run(key="nope")
    assert missing.startswith("Nothing is stored under 'nope'.") and "'topic'" in missing
    assert t["forget"].run(key="topic") == "Forgot 'topic'."
    assert t["forget"].run(key="topic") == "Nothing was stored under 'topic'."
    assert "topic" not in memory


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (0, "0"),
        (False, "false"),
        (3.5, "3.5"),
        ([], "[]"),
        ("", ""),
        ("héllo 🌍", "héllo 🌍"),
        ({"ü": [1, None, True]}, '{"ü": [1, null, true]}'),
    ],
)
def test_recall_renders_any_stored_type(
    memory_url: str, memory: Memory, value: Any, text: str
) -> None:
    memory.set("k/with #odd ?chars", value)
    recall = by_name(memory_tools(memory=memory))["recall"]
    assert recall.run(key="k/with #odd ?chars") == text


def test_recall_truncates_huge_values(memory: Memory) -> None:
    memory.set("big", "x" * 20_000)
    recall = by_name(memory_tools(memory=memory))["recall"]
    out = recall.run(key="big")
    assert out.startswith("x" * 8000) and out.endswith("(truncated; 12000 more characters)")


def test_read_only_leaves_out_writes(memory: Memory) -> None:
    memory.set("fact", "kept")
    tools = by_name(memory_tools(memory=memory, read_only=True))
    assert list(tools) == ["recall", "list_memories"]
    assert tools["recall"].run(key="fact") == "kept"


def test_errors_come_back_as_text(memory: Memory) -> None:
    t = by_name(memory_tools(memory=memory))
    out = t["remember"].run(key="bad\x00key", value="v")
    assert out.startswith("Error: could not remember")
    assert memory.namespace in out  # botwire's message names the namespace
    assert t["recall"].run(key="bad\x00key").startswith("Error: could not recall")
    assert "bad\x00key" not in memory.list()


def test_bad_arguments_fail_clearly(memory_url: str, memory: Memory) -> None:
    with pytest.raises(InvalidNamespace):
        memory_tools("not a namespace!", url=memory_url)
    with pytest.raises(TypeError, match="needs a namespace"):
        memory_tools()
    with pytest.raises(ValueError, match="differs"):
        memory_tools("other", memory=memory)
    with pytest.raises(ValueError, match="arguments validation failed"):
        by_name(memory_tools(memory=memory))["remember"].run(key="", value="v")


def test_ttl_applies_to_remember(memory: Memory) -> None:
    by_name(memory_tools(memory=memory, ttl=3600))["remember"].run(key="k", value="v")
    entry = memory.entry("k")
    assert entry is not None and entry.expires_at is not None
    assert 3500 < entry.expires_at - entry.updated_at <= 3600


def test_async_tools(memory: Memory) -> None:
    t = by_name(memory_tools(memory=memory))

    async def scenario() -> list[str]:
        return [
            await t["remember"].arun(key="a", value=[1, 2]),
            await t["recall"].arun(key="a"),
            await t["list_memories"].arun(prefix=""),
            await t["forget"].arun(key="a"),
            await t["recall"].arun(key="a"),
        ]

    out = asyncio.run(scenario())
    assert out[:4] == ["Remembered 'a'.", "[1, 2]", "1 memory: 'a'", "Forgot 'a'."]
    assert out[4] == "Nothing is stored under 'a'. The memory is empty."


def test_tools_serialize_without_the_client(memory: Memory) -> None:
    dumped = [t.model_dump(mode="json") for t in memory_tools(memory=memory)]
    assert [d["namespace"] for d in dumped] == [memory.namespace] * 4
    assert "Memory(" not in json.dumps(dumped)


def test_agent_uses_tools_in_react_loop(memory: Memory) -> None:
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            react("list_memories", "{}"),
            react("remember", '{"key": "findings", "value": {"topic": "perovskites", "n": 3}}'),
            react("recall", '{"key": "findings"}'),
            FINAL.format("saved the findings"),
        ],
    )
    researcher = Agent(
        role="Researcher",
        goal="Research and remember",
        backstory="Careful.",
        llm=llm,
        tools=memory_tools(memory=memory),
    )
    task = Task(
        description="Research perovskites and save findings.",
        expected_output="ack",
        agent=researcher,
    )
    result = Crew(agents=[researcher], tasks=[task]).kickoff()
    assert result.raw == "saved the findings"
    assert memory.get("findings") == {"topic": "perovskites", "n": 3}
    seen = llm.transcript()
    assert "Observation: No memories stored." in seen
    assert 'Observation: {"topic": "perovskites", "n": 3}' in seen


def test_agent_uses_tools_with_native_function_calling(memory: Memory) -> None:
    memory.set("user_timezone", "Europe/Paris")
    llm = ScriptedLLM(
        model="scripted-fc",
        function_calling=True,
        responses=[
            [tool_call("c1", "recall", '{"key": "user_timezone"}')],
            [tool_call("c2", "remember", '{"key": "greeted", "value": true}')],
            "The user is in Europe/Paris.",
        ],
    )
    agent = Agent(
        role="Assistant", goal="Help", backstory="Kind.", llm=llm, tools=memory_tools(memory=memory)
    )
    out = agent.kickoff("Where is the user?")
    assert "Europe/Paris" in out.raw
    assert memory.get("greeted") is True
    assert "Europe/Paris" in llm.transcript()


def test_crew_akickoff_uses_the_tools(memory: Memory) -> None:
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            react("remember", '{"key": "async-run", "value": 1}'),
            react("recall", '{"key": "async-run"}'),
            FINAL.format("ok"),
        ],
    )
    agent = Agent(
        role="Worker", goal="Work", backstory="Async.", llm=llm, tools=memory_tools(memory=memory)
    )
    task = Task(description="Count the async run.", expected_output="ok", agent=agent)
    result = asyncio.run(Crew(agents=[agent], tasks=[task]).akickoff())
    assert result.raw == "ok"
    assert memory.get("async-run") == 1
    assert "Observation: 1" in llm.transcript()
