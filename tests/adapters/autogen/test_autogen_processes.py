"""Serverless, honestly: a fresh process resumes the agent; concurrent writers lose nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_helpers import call, remember_tool, replay
from support.adapters import start_worker, worker_result

from botwire_autogen import BotWireMemory, save_state

WORKER = Path(__file__).with_name("autogen_worker.py")


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return start_worker(WORKER, env, *args)


def result_of(proc: subprocess.Popen[str]) -> Any:
    return worker_result(proc, timeout=180)


def test_fresh_process_resumes_agent_and_memory(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    async def first_invocation() -> None:
        memory = BotWireMemory(ns, url=memory_url)
        agent = AssistantAgent(
            "assistant",
            model_client=replay(
                call("c1", "remember", '{"fact": "Ada drinks green tea"}'), "Noted."
            ),
            tools=[remember_tool(memory)],
            memory=[memory],
            reflect_on_tool_use=True,
        )
        await agent.run(task="I am Ada and I like green tea")
        await save_state(memory, "agent-state", agent)
        await memory.close()

    asyncio.run(first_invocation())
    out = result_of(start(subprocess_env, "resume", ns))
    assert out["loaded"] is True
    assert out["recalled"] == ["Ada drinks green tea"]
    # The resumed model context holds the first invocation's conversation, then the new turn.
    assert out["context"][0] == "I am Ada and I like green tea"
    assert "What do I drink?" in out["context"]
    assert out["context"][-1] == "You drink green tea."


def test_concurrent_adds_lose_nothing(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    procs = [start(subprocess_env, "add", ns, f"w{w}", "25") for w in range(4)]
    for p in procs:
        assert result_of(p) == {"added": 25}

    async def contents() -> list[str]:
        memory = BotWireMemory(ns, url=memory_url)
        out = [str(c.content) for c in await memory.contents()]
        await memory.close()
        return out

    got = asyncio.run(contents())
    assert sorted(got) == sorted(f"w{w}-{i}" for w in range(4) for i in range(25))
    for w in range(4):  # each writer's items stay in its own order
        mine = [x for x in got if x.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(25)]
