"""BotWireSessionService keeps ADK's session semantics (in-process, embedded and HTTP).

temp: never stored, app:/user: stored once per app/user and merged on read, partial events
skipped, GetSessionConfig, OCC without false positives, hostile ids kept apart.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event, EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from botwire import Memory
from botwire_adk import BotWireSessionService

APP = "shop"


def _event(
    author: str = "user", ts: float | None = None, partial: bool | None = None, **delta: Any
) -> Event:
    kw: dict[str, Any] = {} if ts is None else {"timestamp": ts}
    return Event(
        author=author,
        invocation_id="inv",
        partial=partial,
        content=types.Content(role="user", parts=[types.Part(text=f"{author} says hi")]),
        actions=EventActions(state_delta=delta),
        **kw,
    )


@pytest.fixture
def service(memory_url: str, namespace: str) -> BotWireSessionService:
    return BotWireSessionService(namespace, url=memory_url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_state_prefixes(service: BotWireSessionService, memory: Memory) -> None:
    async def go() -> None:
        s1 = await service.create_session(
            app_name=APP,
            user_id="alice",
            session_id="s1",
            state={"topic": "shoes", "app:greeting": "hi", "user:lang": "fr", "temp:t": 1},
        )
        assert "temp:t" not in s1.state
        assert s1.state == {"topic": "shoes", "app:greeting": "hi", "user:lang": "fr"}
        await service.append_event(
            s1, _event(**{"temp:scratch": 1, "user:lang": "de", "app:n": 2, "step": 1})
        )
        # temp: lives in the in-memory session for this invocation only.
        assert s1.state["temp:scratch"] == 1
        # Another session of the same user sees user: and app: state, not session state.
        s2 = await service.create_session(app_name=APP, user_id="alice", session_id="s2")
        assert s2.state == {"app:greeting": "hi", "app:n": 2, "user:lang": "de"}
        # Another user sees app: state only.
        s3 = await service.create_session(app_name=APP, user_id="bob", session_id="s1")
        assert s3.state == {"app:greeting": "hi", "app:n": 2}
        # Another app sees nothing.
        other = await service.create_session(app_name="other", user_id="alice")
        assert other.state == {}
        back = await service.get_session(app_name=APP, user_id="alice", session_id="s1")
        assert back is not None
        assert back.state == {
            "topic": "shoes",
            "step": 1,
            "app:greeting": "hi",
            "app:n": 2,
            "user:lang": "de",
        }
        assert back.events[0].actions.state_delta == {"user:lang": "de", "app:n": 2, "step": 1}
        assert await service.get_user_state(app_name=APP, user_id="alice") == {"lang": "de"}
        assert await service.get_user_state(app_name=APP, user_id="carol") == {}

    run(go())
    # Stored once per app and per user, without prefixes; temp: nowhere.
    assert memory.get(f"app/{APP}/state") == {"greeting": "hi", "n": 2}
    assert memory.get(f"app/{APP}/user/alice/state") == {"lang": "de"}
    stored = memory.get(f"app/{APP}/user/alice/session/s1")
    assert stored["state"] == {"topic": "shoes", "step": 1}
    assert "temp:" not in str(memory.get(f"app/{APP}/user/alice/session/s1/events"))


def test_partial_events_are_not_stored(service: BotWireSessionService) -> None:
    async def go() -> None:
        s = await service.create_session(app_name=APP, user_id="alice")
        await service.append_event(s, _event(partial=True, k=1))
        await service.append_event(s, _event(k=2))
        back = await service.get_session(app_name=APP, user_id="alice", session_id=s.id)
        assert back is not None
        assert len(back.events) == 1 and back.state == {"k": 2}

    run(go())


def test_get_session_config(service: BotWireSessionService) -> None:
    async def go() -> None:
        s = await service.create_session(app_name=APP, user_id="alice")
        for i in range(100):
            await service.append_event(s, _event(author=f"a{i}", ts=1000.0 + i))
        key = {"app_name": APP, "user_id": "alice", "session_id": s.id}

        async def authors(**cfg: Any) -> list[str]:
            got = await service.get_session(**key, config=GetSessionConfig(**cfg))
            assert got is not None
            return [e.author for e in got.events]

        assert await authors(num_recent_events=3) == ["a97", "a98", "a99"]
        assert await authors(num_recent_events=0) == []
        assert await authors(after_timestamp=1095.0) == [f"a{i}" for i in range(95, 100)]
        assert await authors(after_timestamp=1040.0) == [f"a{i}" for i in range(40, 100)]
        assert await authors(after_timestamp=1040.0, num_recent_events=2) == ["a98", "a99"]
        assert await authors(after_timestamp=1098.5, num_recent_events=5) == ["a99"]
        assert await authors(after_timestamp=0.0) == [f"a{i}" for i in range(100)]
        assert await authors(after_timestamp=2000.0) == []
        full = await service.get_session(**key)
        assert full is not None and len(full.events) == 100
        assert full.last_update_time == 1099.0

    run(go())


def test_stale_only_when_another_writer_won(
    service: BotWireSessionService, memory_url: str, namespace: str
) -> None:
    other = BotWireSessionService(namespace, url=memory_url)  # another client, as another process

    async def go() -> None:
        key = {"app_name": APP, "user_id": "alice", "session_id": "s"}
        mine = await service.create_session(**key)
        # Many appends through one session object: never stale (the marker follows our writes).
        for i in range(5):
            await service.append_event(mine, _event(i=i))
        theirs = await other.get_session(**key)
        assert theirs is not None
        await other.append_event(theirs, _event("them", x=1))
        lost = _event("me", y=1)
        with pytest.raises(StaleSessionError, match="changed by another writer"):
            await service.append_event(mine, lost)
        stored = await service.get_session(**key)
        assert stored is not None
        assert lost.id not in [e.id for e in stored.events] and "y" not in stored.state
        # Sessions of the same user writing user:/app: state at once never conflict as stale.
        a = await service.create_session(app_name=APP, user_id="bob", session_id="a")
        b = await other.create_session(app_name=APP, user_id="bob", session_id="b")
        for i in range(10):
            await asyncio.gather(
                service.append_event(a, _event(**{"user:from_a": i, "app:a": i})),
                other.append_event(b, _event(**{"user:from_b": i, "app:b": i})),
            )
        assert await service.get_user_state(app_name=APP, user_id="bob") == {
            "from_a": 9,
            "from_b": 9,
        }
        for sid in ("a", "b"):
            got = await service.get_session(app_name=APP, user_id="bob", session_id=sid)
            assert got is not None and len(got.events) == 10

    run(go())


def test_lifecycle_and_hostile_ids(service: BotWireSessionService) -> None:
    async def go() -> None:
        await service.create_session(app_name=APP, user_id="alice", session_id="x")
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name=APP, user_id="alice", session_id="x")
        # Ids with "/" or "%" cannot reach into other users' or sessions' keys.
        evil = await service.create_session(app_name=APP, user_id="alice/session/x")
        await service.create_session(app_name=APP, user_id="alice%2Fsession", session_id="x")
        await service.append_event(evil, _event(e=1))
        alice = await service.list_sessions(app_name=APP, user_id="alice")
        assert [s.id for s in alice.sessions] == ["x"]
        everyone = await service.list_sessions(app_name=APP)
        assert sorted(s.user_id for s in everyone.sessions) == [
            "alice",
            "alice%2Fsession",
            "alice/session/x",
        ]
        # Oldest update first: the one with an event is last.
        assert everyone.sessions[-1].id == evil.id
        assert all(not s.events for s in everyone.sessions)
        await service.delete_session(app_name=APP, user_id="alice", session_id="x")
        assert await service.get_session(app_name=APP, user_id="alice", session_id="x") is None
        with pytest.raises(SessionNotFoundError):
            await service.append_event(
                evil.model_copy(update={"user_id": "alice", "id": "x"}), _event()
            )
        # A re-created session starts empty: no events of the deleted one come back.
        again = await service.create_session(app_name=APP, user_id="alice", session_id="x")
        back = await service.get_session(app_name=APP, user_id="alice", session_id="x")
        assert back is not None and back.events == [] and again.events == []

    run(go())
