"""A scripted ``agents.Model`` (no network) and the agent the tests and workers share."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, ModelSettings, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)


def text_of(item: Any) -> str:
    """The text of an input item (a user string, or a message's output_text parts)."""
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class EchoModel(Model):
    """Answers every turn with what it saw: ``saw N user messages: a | b | c``.

    So a test (or a fresh process) can check the model got the whole stored history.
    ``approve_tool`` makes the first answer a call to that tool (for human approval tests).
    """

    def __init__(self, approve_tool: str | None = None) -> None:
        self.approve_tool = approve_tool
        self.inputs: list[list[Any]] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        outputs = [
            i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        if self.approve_tool and not outputs:
            call = ResponseFunctionToolCall(
                type="function_call",
                call_id="call-1",
                name=self.approve_tool,
                arguments=json.dumps({"amount": 120}),
                id="fc-1",
                status="completed",
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        users = [text_of(i) for i in items if isinstance(i, dict) and i.get("role") == "user"]
        text = f"saw {len(users)} user messages: " + " | ".join(users)
        if outputs:
            text += f" | tool said {outputs[-1].get('output')}"
        msg = ResponseOutputMessage(
            id=f"msg-{uuid.uuid4().hex[:12]}",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )
        return ModelResponse(output=[msg], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the tests do not stream")


@function_tool(needs_approval=True)
def refund(amount: int) -> str:
    """Refund an amount to the customer (needs a human's approval)."""
    return f"refunded {amount}"


def echo_agent(model: EchoModel | None = None) -> Agent[Any]:
    return Agent(
        name="echo",
        instructions="Be brief.",
        model=model or EchoModel(),
        model_settings=ModelSettings(),
    )


def refund_agent(model: EchoModel | None = None) -> Agent[Any]:
    return Agent(
        name="support",
        instructions="Refund when asked.",
        model=model or EchoModel(approve_tool="refund"),
        tools=[refund],
    )
