"""Pydantic AI's own FunctionModel scripted to report what it saw (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


def user_prompts(messages: list[ModelMessage]) -> list[str]:
    return [
        str(p.content)
        for m in messages
        if m.kind == "request"
        for p in m.parts
        if p.part_kind == "user-prompt"
    ]


def _echo(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    users = user_prompts(messages)
    return ModelResponse(parts=[TextPart(f"saw {len(users)}: " + " | ".join(users))])


async def _echo_stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    users = user_prompts(messages)
    yield f"saw {len(users)}: "
    yield " | ".join(users)


def echo_agent() -> Agent[None, str]:
    """An agent whose answer lists every user prompt the model was sent, oldest first."""
    return Agent(FunctionModel(_echo, stream_function=_echo_stream), instructions="Be brief.")
