"""A scripted Strands model (no network) and the agents the Strands tests run.

The model answers ``"reply <n>: heard <last user text>; history <k>"`` where ``k`` is the number of
messages it was sent, so a reply proves which history a restored agent really had. With
``tool=True`` its first answer of a turn calls the ``note`` tool, so a turn also stores a
``toolUse``/``toolResult`` pair (the messages a restore must keep paired).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from strands import Agent, tool
from strands.models.model import Model


@tool
def note(text: str) -> str:
    """Write a note (a tool the scripted model calls)."""
    return f"noted {text}"


class ScriptedModel(Model):
    """Deterministic Strands model: text replies, optionally preceded by one tool call."""

    def __init__(self, *, tool: bool = False) -> None:
        self.tool = tool
        self.calls = 0
        self.config: dict[str, Any] = {}

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    async def structured_output(
        self, output_model: Any, prompt: Any, system_prompt: Any = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError
        yield {}

    async def stream(
        self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls += 1
        last = messages[-1]
        heard = next((b["text"] for b in last["content"] if "text" in b), None)
        yield {"messageStart": {"role": "assistant"}}
        if self.tool and heard is not None:
            yield {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": f"t{len(messages)}", "name": "note"}}
                }
            }
            arguments = json.dumps({"text": heard})
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": arguments}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            return
        text = f"reply {self.calls}: heard {heard}; history {len(messages)}"
        yield {"contentBlockDelta": {"delta": {"text": text}}}
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "end_turn"}}


def make_agent(session_manager: Any = None, *, tool: bool = False, **kwargs: Any) -> Agent:
    """A real Strands ``Agent`` on the scripted model, quiet (no stdout callback)."""
    return Agent(
        model=ScriptedModel(tool=tool),
        tools=[note] if tool else [],
        session_manager=session_manager,
        callback_handler=None,
        **kwargs,
    )


def reply_text(result: Any) -> str:
    return "".join(b.get("text", "") for b in result.message["content"])
