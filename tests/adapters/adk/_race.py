"""One of two processes appending to the same ADK session at the same moment.

Usage: ``_race.py NAMESPACE SESSION_ID GO_PATH TAG OUT BURST``. Reads the session, signals
ready, waits for ``GO_PATH``, appends an event; on ``StaleSessionError`` reads the session again
and retries (what a caller should do; the other process may have appended again meanwhile).
Then appends ``BURST`` more events as fast as it can, each with its own state key, re-reading
on every ``StaleSessionError``: while the other process does the same, any write that skipped
the version check would drop the other's state delta.
Writes ``{"stale": n, "event": id, "burst": [ids], "burst_stale": n}`` to ``OUT`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from google.adk.errors import StaleSessionError
from google.adk.events.event import Event, EventActions
from google.genai import types

from botwire_adk import BotWireSessionService


async def main(namespace: str, sid: str, go: str, tag: str, burst: str) -> dict:
    service = BotWireSessionService(namespace)
    key = {"app_name": "shop", "user_id": "alice", "session_id": sid}
    session = await service.get_session(**key)
    assert session is not None
    Path(f"{go}.ready-{tag}").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    result: dict = {"stale": 0, "burst": [], "burst_stale": 0}
    while True:
        event = _event(tag, {f"by_{tag}": True, "last": tag})
        try:
            await service.append_event(session, event)
            result["event"] = event.id
            break
        except StaleSessionError:
            result["stale"] += 1
            session = await service.get_session(**key)
    for i in range(int(burst)):
        while True:
            event = _event(tag, {f"{tag}_{i}": i})
            try:
                await service.append_event(session, event)
                result["burst"].append(event.id)
                break
            except StaleSessionError:
                result["burst_stale"] += 1
                session = await service.get_session(**key)
    return result


def _event(tag: str, delta: dict) -> Event:
    return Event(
        author=tag,
        invocation_id=f"inv-{tag}",
        content=types.Content(role="user", parts=[types.Part(text=f"from {tag}")]),
        actions=EventActions(state_delta=delta),
    )


if __name__ == "__main__":
    Path(sys.argv[5]).write_text(json.dumps(asyncio.run(main(*sys.argv[1:5], sys.argv[6]))))
