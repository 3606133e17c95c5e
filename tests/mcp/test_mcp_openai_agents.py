"""An OpenAI Agents SDK agent remembers across two runs through botwire-mcp (MCPServerStdio).

The agent loop is the SDK's own (``Runner.run``) with a scripted model, so there is no network:
the model asks for tools by name, the SDK calls them on a real ``botwire-mcp`` stdio process,
and feeds the results back. Each run starts its own server process, as two invocations would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse
from agents.mcp import MCPServerStdio
from agents.models.interface import Model
from agents.usage import Usage
from mcp_helpers import mcp_env
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from botwire import Memory

Step = Callable[[list[dict[str, Any]], list[str]], Any]


def _tool_call(name: str, **arguments: Any) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        type="function_call",
        call_id=f"call-{name}",
        name=name,
        arguments=json.dumps(arguments),
        id=f"fc-{name}",
        status="completed",
    )


def _say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg-1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


class ScriptedModel(Model):
    """Answers each model call with the next step; a step sees the input items and tool names."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.seen_tools: list[str] = []

    async def get_response(
        self,
        system_instructions,
        input,
        model_settings,
        tools,
        output_schema,
        handoffs,
        tracing,
        **kwargs: Any,
    ) -> ModelResponse:
        names = [t.name for t in tools]
        self.seen_tools = names
        items = input if isinstance(input, list) else [{"role": "user", "content": input}]
        output = self.steps.pop(0)(items, names)
        return ModelResponse(output=[output], usage=Usage(), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any):  # pragma: no cover
        raise NotImplementedError
        yield


def _last_tool_output(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = next(i for i in reversed(items) if i.get("type") == "function_call_output")
    text = out["output"]
    if isinstance(text, list):  # newer SDKs send content parts
        text = next(p["text"] for p in text if p.get("type") in ("input_text", "text"))
    data = json.loads(text)
    return data.get("structuredContent", data) if isinstance(data, dict) else data


@pytest.mark.asyncio
async def test_agent_remembers_across_two_runs_via_mcp_server_stdio(
    tmp_path: Path, namespace: str
) -> None:
    set_tracing_disabled(True)
    url = f"sqlite:///{tmp_path}/agent.db"
    params = {
        "command": sys.executable,
        "args": ["-m", "botwire_mcp"],
        "env": mcp_env(url, namespace),
    }

    def remember(items: list[dict[str, Any]], tools: list[str]) -> Any:
        assert "memory_set" in tools and "create_entities" in tools
        user = next(i for i in items if i.get("role") == "user")["content"]
        return _tool_call("memory_set", key="favourite_colour", value=user.rsplit(" ", 1)[-1])

    def confirm(items: list[dict[str, Any]], tools: list[str]) -> Any:
        return _say(f"Saved at version {_last_tool_output(items)['version']}.")

    first = ScriptedModel([remember, confirm])
    async with MCPServerStdio(
        params=params, cache_tools_list=True, client_session_timeout_seconds=60
    ) as server:
        agent = Agent(
            name="assistant", instructions="Use memory.", model=first, mcp_servers=[server]
        )
        result = await Runner.run(agent, "My favourite colour is teal")
    assert result.final_output.startswith("Saved at version ")

    def recall(items: list[dict[str, Any]], tools: list[str]) -> Any:
        return _tool_call("memory_get", key="favourite_colour")

    def answer(items: list[dict[str, Any]], tools: list[str]) -> Any:
        got = _last_tool_output(items)
        return _say(f"Your favourite colour is {got['value']}.")

    second = ScriptedModel([recall, answer])
    async with MCPServerStdio(
        params=params, cache_tools_list=True, client_session_timeout_seconds=60
    ) as server:
        agent = Agent(
            name="assistant", instructions="Use memory.", model=second, mcp_servers=[server]
        )
        result = await Runner.run(agent, "What is my favourite colour?")
    assert result.final_output == "Your favourite colour is teal."
    with Memory(namespace, url=url) as m:
        assert m.get("favourite_colour") == "teal"
