"""Runs in a fresh Python process (a simulated serverless invocation); prints ``RESULT <json>``.

    python oa_worker.py invocation URLS NS N TEXT  # invocation N of the scenario below
    python oa_worker.py add URLS NS SID TAG N GO   # N add_items calls of 2 items, after GO exists

URLS is a comma-separated list of backends (an embedded file, a server): the process does the
same work on each, so one process stands for one invocation on every backend.

Importing the Agents SDK costs seconds of CPU, so one process plays one invocation of two
stories at once: a chat (one turn per invocation on session "chat") and a refund awaiting a
human's approval (1: the run pauses and is parked; 2: approved, resumed; 3: a duplicate
approval finds nothing to resume).

"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from agents import Runner
from oa_helpers import EchoModel, echo_agent, refund_agent, text_of

from botwire_openai_agents import BotWireRunStore, BotWireSession


async def turn(url: str, ns: str, sid: str, text: str) -> dict[str, Any]:
    model = EchoModel()
    session = BotWireSession(sid, namespace=ns, url=url)
    result = await Runner.run(echo_agent(model), text, session=session)
    await session.aclose()
    return {"output": result.final_output, "model_saw": [text_of(i) for i in model.inputs[-1]]}


async def add(urls: list[str], ns: str, sid: str, tag: str, n: int, go: str) -> dict[str, Any]:
    sessions = [BotWireSession(sid, namespace=ns, url=url) for url in urls]
    Path(f"{go}.ready-{tag}").touch()
    while not Path(go).exists():
        time.sleep(0.01)
    for i in range(n):
        for session in sessions:  # interleaved: both backends under contention at once
            await session.add_items(
                [
                    {"role": "user", "content": f"{tag}-{i}-q"},
                    {"role": "assistant", "content": f"{tag}-{i}-a"},
                ]
            )
    for session in sessions:
        await session.aclose()
    return {"added": n}


async def park(url: str, ns: str, run_id: str, sid: str) -> dict[str, Any]:
    session = BotWireSession(sid, namespace=ns, url=url)
    runs = BotWireRunStore(ns, ttl=600, url=url)
    result = await Runner.run(refund_agent(), "please refund my order", session=session)
    assert result.interruptions, "the run should pause for approval"
    await runs.park(run_id, result)
    await session.aclose()
    await runs.aclose()
    return {"paused_on": [i.tool_name for i in result.interruptions]}


async def resume(url: str, ns: str, run_id: str, sid: str) -> dict[str, Any]:
    session = BotWireSession(sid, namespace=ns, url=url)
    runs = BotWireRunStore(ns, url=url)
    agent = refund_agent()
    state = await runs.resume(agent, run_id)
    if state is None:
        return {"resumed": False}
    for item in state.get_interruptions():
        state.approve(item)
    result = await Runner.run(agent, state, session=session)
    again = await runs.resume(agent, run_id)
    history = await session.get_items()
    await session.aclose()
    await runs.aclose()
    return {
        "resumed": True,
        "output": result.final_output,
        "again": again is not None,
        "history_types": [i.get("type", i.get("role")) for i in history],
    }


async def invocation(urls: list[str], ns: str, n: str, text: str) -> list[dict[str, Any]]:
    outs = []
    for url in urls:
        out = {"turn": await turn(url, ns, "chat", text)}
        if n == "1":
            out["park"] = await park(url, ns, "run-7", "cust-7")
        else:
            out["resume"] = await resume(url, ns, "run-7", "cust-7")
        outs.append(out)
    return outs


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    urls = args[0].split(",")
    if mode == "invocation":
        coro = invocation(urls, *args[1:])
    else:
        coro = add(urls, args[1], args[2], args[3], int(args[4]), args[5])
    print("RESULT " + json.dumps(asyncio.run(coro)))
