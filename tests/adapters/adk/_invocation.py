"""One ADK invocation in a fresh process (a Cloud Run request): a real ``Runner`` with a scripted
model over ``BotWireSessionService``. Usage: ``_invocation.py NAMESPACE SESSION_ID TEXT``.

The scripted model answers with how many user messages the request carried, so the test sees
whether the history really came back from storage. A callback writes ``temp:``/``app:``/
``user:`` state. Prints ``RESULT {json}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from botwire_adk import BotWireSessionService

APP = "shop"
USER = "alice"


class ScriptedLlm(BaseLlm):
    """No network: the reply is computed from the request."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        said = [
            p.text
            for c in llm_request.contents
            if c.role == "user"
            for p in (c.parts or [])
            if p.text
        ]
        text = f"heard {len(said)}: " + " | ".join(said)
        if stream:  # a partial chunk first: ADK must never store it
            yield LlmResponse(
                content=types.Content(role="model", parts=[types.Part(text=text[:5])]),
                partial=True,
            )
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def before(callback_context: CallbackContext) -> None:
    state = callback_context.state
    assert "temp:scratch" not in state, "temp: state leaked from an earlier invocation"
    state["temp:scratch"] = "only for this invocation"
    state["user:turns"] = state.get("user:turns", 0) + 1
    state["app:calls"] = state.get("app:calls", 0) + 1


async def main(namespace: str, session_id: str, text: str) -> dict[str, Any]:
    service = BotWireSessionService(namespace)
    agent = LlmAgent(
        name="clerk", model=ScriptedLlm(), before_agent_callback=before, output_key="last_reply"
    )
    runner = Runner(agent=agent, app_name=APP, session_service=service)
    if await service.get_session(app_name=APP, user_id=USER, session_id=session_id) is None:
        await service.create_session(app_name=APP, user_id=USER, session_id=session_id)
    from google.adk.agents.run_config import RunConfig, StreamingMode

    replies = []
    async for event in runner.run_async(
        user_id=USER,
        session_id=session_id,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
        run_config=RunConfig(streaming_mode=StreamingMode.SSE),
    ):
        if event.content and event.content.parts and not event.partial:
            replies.append(event.content.parts[0].text)
    return {"replies": replies}


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(*sys.argv[1:4]))))
