"""One of two processes appending to the same ADK session at the same moment.

Usage: ``_race.py NAMESPACE SESSION_ID GO_PATH TAG OUT``. Reads the session, signals ready, waits for
``GO_PATH``, appends an event; on ``StaleSessionError`` reads the session again and retries once
(what a caller should do). Writes ``{"stale": n, "event": id}`` to ``OUT`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.events.event import Event, EventActions
from google.genai import types

from botwire_adk import BotWireSessionService


async def main(namespace: str, sid: str, go: str, tag: str) -> dict:
    service = BotWireSessionService(namespace)
    key = {"app_name": "shop", "user_id": "alice", "session_id": sid}
    session = await service.get_session(**key)
    assert session is not None
    Path(f"{go}.ready-{tag}").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    stale = 0
    for _ in range(2):
        event = Event(
            author=tag,
            invocation_id=f"inv-{tag}",
            content=types.Content(role="user", parts=[types.Part(text=f"from {tag}")]),
            actions=EventActions(state_delta={f"by_{tag}": True, "last": tag}),
        )
        try:
            await service.append_event(session, event)
            return {"stale": stale, "event": event.id}
        except StaleSessionError:
            stale += 1
            session = await service.get_session(**key)
    raise AssertionError("stale twice: nobody else was writing the second time")


if __name__ == "__main__":
    Path(sys.argv[5]).write_text(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
