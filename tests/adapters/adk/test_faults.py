"""A broken network never turns into a false ``StaleSessionError`` or a lost/doubled event.

The client talks to a real botwire-server through a fault-injecting relay: responses lost after
the server applied the write, connections reset, requests dropped before reaching the server.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest
from google.adk.events.event import Event, EventActions
from support.faultproxy import FaultProxy

from botwire_adk import BotWireSessionService

KEY = {"app_name": "shop", "user_id": "alice", "session_id": "s"}


@pytest.mark.parametrize("memory_url", ["http"], indirect=True)
def test_lost_responses_do_not_make_the_session_stale(memory_url: str, namespace: str) -> None:
    port = urlparse(memory_url).port
    assert port is not None
    direct = BotWireSessionService(namespace, url=memory_url)
    with FaultProxy(
        port, faults={"drop_after": 0.15, "reset": 0.1, "drop_before": 0.1}, seed=17
    ) as proxy:
        flaky = BotWireSessionService(namespace, url=proxy.url)

        async def go() -> list[str]:
            session = await flaky.create_session(**KEY)
            ids = []
            for i in range(30):
                event = Event(author="user", actions=EventActions(state_delta={f"k{i}": i}))
                # A retried commit whose first attempt was applied must not look like
                # another writer: no StaleSessionError, and the event stored once.
                await flaky.append_event(session, event)
                ids.append(event.id)
            return ids

        ids = asyncio.run(go())
    print(f"FIGURE adk faults: {dict(proxy.counts)} over 30 appends")
    assert proxy.counts["drop_after"] + proxy.counts["reset"] >= 3  # the faults really happened
    stored = asyncio.run(direct.get_session(**KEY))
    assert stored is not None
    assert [e.id for e in stored.events] == ids
    assert {f"k{i}": i for i in range(30)}.items() <= stored.state.items()


@pytest.mark.parametrize("memory_url", ["http"], indirect=True)
def test_oversized_event_is_refused_and_nothing_is_lost(memory_url: str, namespace: str) -> None:
    from google.genai import types

    from botwire import ValueTooLarge

    service = BotWireSessionService(namespace, url=memory_url)
    huge = types.Content(role="user", parts=[types.Part(text="x" * (2 << 20))])

    async def go() -> None:
        session = await service.create_session(**KEY, state={"kept": 1})
        await service.append_event(session, Event(author="user"))
        with pytest.raises(ValueTooLarge, match="events"):
            await service.append_event(session, Event(author="user", content=huge))
        # Nothing of the refused event was stored and the same session object goes on.
        ok = Event(author="user", actions=EventActions(state_delta={"after": True}))
        await service.append_event(session, ok)
        stored = await service.get_session(**KEY)
        assert stored is not None
        assert len(stored.events) == 2 and stored.events[-1].id == ok.id
        assert stored.state == {"kept": 1, "after": True}

    asyncio.run(go())
