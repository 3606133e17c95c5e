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


def test_padded_session_ids_resolve_like_adks_services(service: BotWireSessionService) -> None:
    """create strips surrounding whitespace; get and delete must too (InMemory and Sqlite do)."""
    from google.adk.sessions import InMemorySessionService

    async def script(svc: Any) -> list[Any]:
        created = await svc.create_session(app_name=APP, user_id="u", session_id=" chat-1\n")
        got = await svc.get_session(app_name=APP, user_id="u", session_id="chat-1\n")
        assert got is not None
        await svc.append_event(got, _event(n=1))  # the session get returned is usable
        again = await svc.get_session(app_name=APP, user_id="u", session_id="\tchat-1 ")
        blank = await svc.get_session(app_name=APP, user_id="u", session_id="   ")
        await svc.delete_session(app_name=APP, user_id="u", session_id="   ")  # no-op
        await svc.delete_session(app_name=APP, user_id="u", session_id=" chat-1 ")
        left = await svc.get_session(app_name=APP, user_id="u", session_id="chat-1")
        listed = await svc.list_sessions(app_name=APP, user_id="u")
        return [
            created.id,
            got.id,
            again and (again.id, len(again.events), again.state),
            blank,
            left,
            listed.sessions,
        ]

    ours = run(script(service))
    assert ours == run(script(InMemorySessionService()))
    assert ours == ["chat-1", "chat-1", ("chat-1", 1, {"n": 1}), None, None, []]


def test_redelivered_event_is_stored_once(service: BotWireSessionService, memory: Memory) -> None:
    """An application retrying append_event (a timeout, outcome unknown) never doubles the
    event: an equal re-delivery is a no-op, as in InMemorySessionService."""
    from google.adk.sessions import InMemorySessionService

    async def script(svc: Any) -> list[Any]:
        s = await svc.create_session(app_name=APP, user_id="u", session_id="pay")
        ev = _event(**{"user:credits": 5})
        await svc.append_event(s, ev)
        back = await svc.append_event(s, ev)  # the same object again
        await svc.append_event(s, ev.model_copy(deep=True))  # an equal copy
        got = await svc.get_session(app_name=APP, user_id="u", session_id="pay")
        assert got is not None
        return [back is ev, [e.id == ev.id for e in got.events], len(s.events), got.state]

    ours = run(script(service))
    assert ours == run(script(InMemorySessionService()))
    assert ours == [True, [True], 1, {"user:credits": 5}]
    assert len(memory.get(f"app/{APP}/user/u/session/pay/events")) == 1


def test_retry_after_a_lost_answer_is_not_stale(service: BotWireSessionService) -> None:
    """The first attempt committed but its caller never heard (its marker did not move): the
    retry is recognised as ours, not another writer's, and stores nothing."""

    async def go() -> None:
        key = {"app_name": APP, "user_id": "u", "session_id": "s"}
        await service.create_session(**key)
        first, retrying = await service.get_session(**key), await service.get_session(**key)
        assert first is not None and retrying is not None
        ev = _event(step=1)
        await service.append_event(first, ev)  # stands for the attempt whose answer was lost
        assert await service.append_event(retrying, ev.model_copy(deep=True)) is not None
        got = await service.get_session(**key)
        assert got is not None and [e.id for e in got.events] == [ev.id]
        # A new event from the object that missed the commit is still refused as stale.
        with pytest.raises(StaleSessionError):
            await service.append_event(retrying, _event(step=2))

    run(go())


def test_a_different_event_with_a_stored_id_is_refused(
    service: BotWireSessionService, memory: Memory
) -> None:
    async def go() -> None:
        key = {"app_name": APP, "user_id": "u", "session_id": "s"}
        s = await service.create_session(**key)
        ev = _event(step=1)
        await service.append_event(s, ev)
        other = _event("agent", step=2).model_copy(update={"id": ev.id})
        with pytest.raises(AlreadyExistsError) as info:
            await service.append_event(s, other)
        message = str(info.value)
        for part in ("'s'", repr(ev.id), "stored once", "Event.new_id()"):
            assert part in message, message
        got = await service.get_session(**key)
        assert got is not None and [e.author for e in got.events] == ["user"]
        assert got.state == {"step": 1}
        # A deleted session's ids go with it: a re-created one takes the id again.
        await service.delete_session(**key)
        assert memory.list(f"app/{APP}/user/u/session/s") == []
        s = await service.create_session(**key)
        await service.append_event(s, other)
        got = await service.get_session(**key)
        assert got is not None and [e.author for e in got.events] == ["agent"]

    run(go())


def test_two_racing_copies_of_an_event_store_one(
    service: BotWireSessionService, memory_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both copies read the session before either commits: the loser's commit conflicts, and
    on re-reading it finds its event as the newest one, so it stores nothing (not stale)."""

    async def go() -> None:
        key = {"app_name": APP, "user_id": "u", "session_id": "s"}
        await service.create_session(**key)
        mine, theirs = await service.get_session(**key), await service.get_session(**key)
        assert mine is not None and theirs is not None
        ev = _event(**{"user:credits": 5, "n": 1})
        other = BotWireSessionService(namespace, url=memory_url)  # another process, say
        reads = 0
        mem = service.memory
        read = mem.entries

        async def entries(keys: Any) -> Any:
            nonlocal reads
            got = await read(keys)
            reads += 1
            if reads == 1:  # between our read and our commit, the other copy commits
                await other.append_event(theirs, ev)
            return got

        monkeypatch.setattr(mem, "entries", entries)
        back = await service.append_event(mine, ev.model_copy(deep=True))
        monkeypatch.undo()
        assert reads == 2 and back.id == ev.id
        got = await service.get_session(**key)
        assert got is not None and [e.id for e in got.events] == [ev.id]
        assert got.state == {"user:credits": 5, "n": 1}

    run(go())


def test_many_events_create_no_key_per_event(
    service: BotWireSessionService, memory: Memory
) -> None:
    """Duplicate detection lives in the session record: the namespace's key count (quotas)
    does not grow with a long session's events, and deleting it removes a fixed set of keys."""

    async def go() -> None:
        key = {"app_name": APP, "user_id": "u", "session_id": "long"}
        s = await service.create_session(**key)
        for i in range(60):
            ev = _event(**{"n": i, "user:seen": i})
            await service.append_event(s, ev)
            await service.append_event(s, ev)  # every append retried once: a no-op
        assert memory.list() == [
            f"app/{APP}/user/u/session/long",
            f"app/{APP}/user/u/session/long/events",
            f"app/{APP}/user/u/state",
        ]
        got = await service.get_session(**key)
        assert got is not None and len(got.events) == 60
        assert got.state == {"n": 59, "user:seen": 59}
        await service.delete_session(**key)
        assert memory.list() == [f"app/{APP}/user/u/state"]

    run(go())


def test_redelivery_to_a_session_stored_before_digests_were_kept(
    service: BotWireSessionService, memory: Memory
) -> None:
    """Records written by an earlier botwire-adk hold the newest event's id but no digest: a
    re-delivery of that event is compared with the newest stored event instead."""

    async def go() -> None:
        key = {"app_name": APP, "user_id": "u", "session_id": "old"}
        s = await service.create_session(**key)
        first, ev = _event(step=1), _event(step=2)
        await service.append_event(s, first)
        await service.append_event(s, ev)
        skey = f"app/{APP}/user/u/session/old"
        record = memory.get(skey)
        record.pop("last_event_digest", None)
        memory.set(skey, record)  # as an earlier version stored it (and a newer revision)
        await service.append_event(s, ev.model_copy(deep=True))  # before the stale check
        with pytest.raises(AlreadyExistsError):
            await service.append_event(s, _event("x").model_copy(update={"id": ev.id}))
        got = await service.get_session(**key)
        assert got is not None and [e.id for e in got.events] == [first.id, ev.id]
        assert got.state == {"step": 2}
        # Appending a new event goes on as before, and the record gains a digest.
        await service.append_event(got, _event(step=3))
        assert len(memory.get(f"{skey}/events")) == 3 and "last_event_digest" in memory.get(skey)

    run(go())
