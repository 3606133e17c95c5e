"""A scripted chat client for Agent Framework's real agent loop (no network, no model).

agent-framework-core ships no test chat client in its wheel or sdist, so this is the smallest
one its documentation describes: a ``BaseChatClient`` subclass implementing
``_inner_get_response``, with the framework's ``FunctionInvocationLayer`` so scripted tool
calls run through the real tool loop. Each reply may depend on what the model was shown, and
every call records the conversation it saw (``seen``), which is what the tests assert on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)

Reply = str | Content | Callable[[list[Message]], "str | Content"]


def text_of(message: Message) -> str:
    """A message as ``role: text``, tool calls and results spelled out."""
    parts: list[str] = []
    for c in message.contents or []:
        if c.type == "text":
            parts.append(c.text or "")
        elif c.type == "function_call":
            parts.append(f"call {c.name}({json.dumps(c.arguments, sort_keys=True)})")
        elif c.type == "function_result":
            parts.append(f"result {c.result}")
        else:
            parts.append(f"<{c.type}>")
    return f"{message.role}: {' '.join(parts)}"


class ScriptedChatClient(FunctionInvocationLayer[Any], BaseChatClient[Any]):
    """Answers each model call with the next reply of ``script``; records what it was shown."""

    def __init__(self, script: Sequence[Reply]) -> None:
        super().__init__()
        self.script = list(script)
        self.seen: list[list[str]] = []

    async def _inner_get_response(  # type: ignore[override]
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> Any:
        shown = list(messages)
        self.seen.append([text_of(m) for m in shown])
        if not self.script:
            raise AssertionError(f"the scripted model was called once too often: {self.seen[-1]}")
        reply = self.script.pop(0)
        if callable(reply):
            reply = reply(shown)
        content = Content.from_text(reply) if isinstance(reply, str) else reply
        if stream:

            async def updates() -> Any:
                yield ChatResponseUpdate(role="assistant", contents=[content])

            return ResponseStream(updates(), finalizer=ChatResponse.from_updates)
        return ChatResponse(messages=[Message(role="assistant", contents=[content])])


def call(call_id: str, name: str, **arguments: Any) -> Content:
    """A scripted model turn that calls tool ``name``."""
    return Content.from_function_call(call_id=call_id, name=name, arguments=arguments)
