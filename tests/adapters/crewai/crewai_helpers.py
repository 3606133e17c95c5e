"""Test doubles that are part of CrewAI's own API: a scripted LLM and a local embedder."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import Any

from crewai.llms.base_llm import BaseLLM

FINAL = "Thought: I now know the final answer\nFinal Answer: {}"


def react(tool: str, args: str) -> str:
    """One ReAct-text step calling ``tool`` with the JSON ``args``."""
    return f"Thought: I should use {tool}\nAction: {tool}\nAction Input: {args}"


class ScriptedLLM(BaseLLM):
    """A CrewAI LLM that replays ``responses`` in order (or asks ``policy``), recording calls.

    A response is a string (ReAct text or a final answer) or, with ``function_calling=True``,
    a list of OpenAI-style tool calls. When the script runs out it answers ``fallback``.
    """

    responses: list[Any] = []  # noqa: RUF012 (a pydantic field: copied per instance)
    policy: Callable[[list[dict[str, Any]]], Any] | None = None
    function_calling: bool = False
    fallback: str = FINAL.format("done")
    seen: list[Any] = []  # noqa: RUF012

    def call(  # type: ignore[override]
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        self.seen.append(messages)
        if response_model is not None:  # CrewAI's memory analysis: let it fall back
            return "not json"
        if self.policy is not None:
            msgs = messages
            if isinstance(messages, str):
                msgs = [{"role": "user", "content": messages}]
            return self.policy(msgs)
        if self.responses:
            return self.responses.pop(0)
        return self.fallback

    def supports_function_calling(self) -> bool:
        return self.function_calling

    def transcript(self) -> str:
        """Everything the LLM was shown, as one string."""
        return "\n".join(str(m) for m in self.seen)


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """An OpenAI-format tool call for native function calling."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def hash_embedder(texts: list[str], dim: int = 64) -> list[list[float]]:
    """Deterministic bag-of-words embeddings (same in every process), unit length."""
    out: list[list[float]] = []
    for text in texts:
        vec = [0.0] * dim
        for word in re.findall(r"\w+", text.lower()):
            vec[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        out.append([v / norm for v in vec])
    return out
