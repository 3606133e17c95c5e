"""A real ADK ``Runner`` over ``BotWireSessionService``: three invocations, three fresh processes.

Runs on the embedded store and over HTTP (a real botwire-server). No network, no mocks of
botwire: the model is scripted, everything else is ADK's own loop.
"""

from __future__ import annotations

import asyncio
import json

from botwire_adk import BotWireSessionService

APP, USER = "shop", "alice"


def _result(proc) -> dict:
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_three_invocations_in_three_processes(run_script, memory_url, namespace) -> None:
    replies = [
        _result(run_script("_invocation.py", namespace, "s1", text))["replies"]
        for text in ("hello", "my name is Ada", "what is my name?")
    ]
    # Each process saw every earlier user message: the history came back from botwire.
    assert replies[0] == ["heard 1: hello"]
    assert replies[1] == ["heard 2: hello | my name is Ada"]
    assert replies[2] == ["heard 3: hello | my name is Ada | what is my name?"]

    async def check() -> None:
        service = BotWireSessionService(namespace, url=memory_url)
        session = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
        assert session is not None
        # Per turn: the user message, the callback's state-delta event, the final reply;
        # the streamed partial chunks were never stored.
        assert [e.author for e in session.events] == ["user", "clerk", "clerk"] * 3
        assert not any(e.partial for e in session.events)
        assert session.state["user:turns"] == 3
        assert session.state["app:calls"] == 3
        assert session.state["last_reply"].startswith("heard 3:")
        assert not any(key.startswith("temp:") for key in session.state)
        assert await service.get_user_state(app_name=APP, user_id=USER) == {"turns": 3}
        # Stored nowhere, not even inside the events' state deltas.
        raw = await service.memory.get(f"app/{APP}/user/{USER}/session/s1/events")
        assert "temp:scratch" not in json.dumps(raw)

    asyncio.run(check())
