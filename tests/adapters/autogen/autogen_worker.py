"""Runs in a fresh Python process (a simulated next serverless invocation); prints JSON.

    python autogen_worker.py resume NS      # load the agent's state, run one more turn
    python autogen_worker.py add NS TAG N   # N separate BotWireMemory.add() calls

The backend comes from BOTWIRE_URL, exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MemoryQueryEvent
from autogen_core.memory import MemoryContent
from autogen_helpers import replay

from botwire_autogen import BotWireMemory, load_state, save_state


async def resume(ns: str) -> dict[str, Any]:
    memory = BotWireMemory(ns)
    agent = AssistantAgent(
        "assistant", model_client=replay("You drink green tea."), memory=[memory]
    )
    loaded = await load_state(memory, "agent-state", agent)
    result = await agent.run(task="What do I drink?")
    await save_state(memory, "agent-state", agent)
    events = [m for m in result.messages if isinstance(m, MemoryQueryEvent)]
    context = await agent.model_context.get_messages()
    await memory.close()
    return {
        "loaded": loaded,
        "recalled": [str(c.content) for e in events for c in e.content],
        "context": [str(m.content) for m in context],
    }


async def add(ns: str, tag: str, n: int) -> dict[str, Any]:
    memory = BotWireMemory(ns)
    for i in range(n):
        await memory.add(MemoryContent(content=f"{tag}-{i}", mime_type="text/plain"))
    await memory.close()
    return {"added": n}


if __name__ == "__main__":
    mode = sys.argv[1]
    coro = (
        resume(sys.argv[2]) if mode == "resume" else add(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    )
    print("RESULT " + json.dumps(asyncio.run(coro)))
