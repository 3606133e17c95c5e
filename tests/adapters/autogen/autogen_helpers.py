"""AutoGen's own test double (ReplayChatCompletionClient) plus a memory-writing tool."""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core import FunctionCall
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.models import CreateResult, RequestUsage
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from botwire_autogen import BotWireMemory

MODEL_INFO = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}


def call(call_id: str, name: str, arguments: str) -> CreateResult:
    """A scripted model turn that calls a tool."""
    return CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id=call_id, name=name, arguments=arguments)],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )


def replay(*turns: str | CreateResult) -> ReplayChatCompletionClient:
    """A model that answers with ``turns`` in order."""
    chat: Sequence[str | CreateResult] = list(turns)
    return ReplayChatCompletionClient(chat, model_info=MODEL_INFO)  # type: ignore[arg-type]


def remember_tool(memory: BotWireMemory) -> FunctionTool:
    """A tool through which the agent itself writes to its memory."""

    async def remember(fact: str) -> str:
        """Save a fact about the user in long-term memory."""
        await memory.add(MemoryContent(content=fact, mime_type=MemoryMimeType.TEXT))
        return f"Remembered: {fact}"

    return FunctionTool(remember, description="Save a fact about the user in long-term memory.")
