"""Runs in a fresh Python process (one serverless invocation each); prints ``RESULT <json>``.

    python af_worker.py turn NS SESSION N     # turn N (1, 2 or 3) of a scripted conversation
    python af_worker.py save NS SESSION TAG N # N separate save_messages calls (after a go-file)

The backend comes from BOTWIRE_URL, exactly as in production. Each turn restores the session
from BotWireSessionStore (or makes it), runs the real Agent loop with BotWireHistoryProvider,
and stores the session again: the handler shape docs/agent-framework.md shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from agent_framework import Message

from botwire_agent_framework import BotWireHistoryProvider


def script(n: int) -> tuple[str, list[Any]]:
    """Turn ``n``'s user message and the scripted model's replies."""
    from af_helpers import call

    return {
        1: (
            "I am Ada and I drink green tea.",
            [call("c1", "remember", fact="Ada drinks green tea"), "Nice to meet you, Ada."],
        ),
        2: ("I live in Oslo.", ["Oslo is lovely."]),
        3: ("What do you know about me?", ["You are Ada, you drink green tea and live in Oslo."]),
    }[n]


async def turn(ns: str, session_id: str, n: int) -> dict[str, Any]:
    # Imported here: the save mode's racing processes need none of the agent machinery.
    from af_helpers import ScriptedChatClient
    from agent_framework import Agent, tool

    with warnings.catch_warnings():  # the framework's SessionStore is experimental and says so
        warnings.filterwarnings("ignore", message=r"\[SESSION_STORE\]")
        from botwire_agent_framework import BotWireSessionStore

    @tool
    def remember(fact: str) -> str:
        """Note a fact about the user."""
        return f"noted: {fact}"

    history = BotWireHistoryProvider(namespace=ns, ttl=3600)
    store = BotWireSessionStore(namespace=ns, ttl=3600)
    text, replies = script(n)
    client = ScriptedChatClient(replies)
    agent = Agent(client, instructions="Be brief.", tools=[remember], context_providers=[history])
    session = await store.get(session_id)
    restored = session is not None
    if session is None:
        session = agent.create_session(session_id=session_id)
    session.state["turns"] = session.state.get("turns", 0) + 1
    response = await agent.run(text, session=session)
    await store.set(session_id, session)
    await history.aclose()
    await store.aclose()
    return {
        "restored": restored,
        "turns": session.state["turns"],
        "answer": response.text,
        "seen": client.seen,
    }


async def save(ns: str, session_id: str, tag: str, n: int, go: Path) -> dict[str, Any]:
    history = BotWireHistoryProvider(namespace=ns)
    ready = go.with_name(f"{go.name}.ready-{tag}")
    ready.touch()
    while not go.exists():  # all writers start together
        time.sleep(0.01)
    for i in range(n):
        await history.save_messages(
            session_id,
            [
                Message(role="user", contents=[f"{tag}-{i}-q"]),
                Message(role="assistant", contents=[f"{tag}-{i}-a"]),
            ],
        )
    await history.aclose()
    return {"saved": n, "pid": os.getpid()}


if __name__ == "__main__":
    mode, ns, session_id = sys.argv[1:4]
    if mode == "turn":
        coro = turn(ns, session_id, int(sys.argv[4]))
    else:
        coro = save(ns, session_id, sys.argv[4], int(sys.argv[5]), Path(sys.argv[6]))
    print("RESULT " + json.dumps(asyncio.run(coro)))
