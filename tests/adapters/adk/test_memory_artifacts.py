"""BotWireMemoryService and BotWireArtifactService (in-process, embedded and HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.adk.errors.input_validation_error import InputValidationError
from google.adk.events.event import Event
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types

from botwire_adk import BotWireArtifactService, BotWireMemoryService

APP = "shop"


def _text(t: str, author: str = "user") -> Event:
    return Event(author=author, content=types.Content(role="user", parts=[types.Part(text=t)]))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_memory_search_matches_adk_in_memory(memory_url: str, namespace: str) -> None:
    ours = BotWireMemoryService(namespace, url=memory_url)
    fresh = BotWireMemoryService(namespace, url=memory_url)  # another process, in effect
    ref = InMemoryMemoryService()
    events = [
        _text("I like blue shoes"),
        _text("ship to Paris", "agent"),
        _text("私はPythonを使う"),
        Event(author="agent"),
    ]  # no content: never memorised
    session = Session(id="s1", app_name=APP, user_id="alice", events=events)

    moon = _text("blue moon")

    async def go() -> None:
        for svc in (ours, ref):
            await svc.add_session_to_memory(session)
            for _ in range(2):  # twice: merged by event id, never duplicated
                await svc.add_events_to_memory(
                    app_name=APP, user_id="alice", events=[moon], session_id="s2"
                )
        for query in ("blue", "shoes paris", "python", "nothing", "BLUE Paris"):
            got = await fresh.search_memory(app_name=APP, user_id="alice", query=query)
            want = await ref.search_memory(app_name=APP, user_id="alice", query=query)
            # Same hits (ties between equal scores may come in another order).
            assert sorted(m.id for m in got.memories) == sorted(m.id for m in want.memories), query
            assert {m.id: m.content for m in got.memories} == {
                m.id: m.content for m in want.memories
            }
        other = await fresh.search_memory(app_name=APP, user_id="bob", query="blue")
        assert other.memories == []
        # Deleted memories are gone and never come back when the session is re-added.
        blue = events[0].id
        await ours.delete_memory(app_name=APP, user_id="alice", memory_id=blue)
        await ours.add_session_to_memory(session)
        hits = await fresh.search_memory(app_name=APP, user_id="alice", query="shoes")
        assert hits.memories == []
        await ours.add_memory(
            app_name=APP,
            user_id="alice",
            memories=[
                MemoryEntry(content=types.Content(parts=[types.Part(text="allergic to nuts")]))
            ],
            custom_metadata={"source": "form"},
        )
        hits = await fresh.search_memory(app_name=APP, user_id="alice", query="nuts")
        assert [m.custom_metadata for m in hits.memories] == [{"source": "form"}]
        assert hits.memories[0].id

    run(go())


def test_artifact_versions(memory_url: str, namespace: str) -> None:
    svc = BotWireArtifactService(namespace, url=memory_url)
    other = BotWireArtifactService(namespace, url=memory_url)
    key = {"app_name": APP, "user_id": "alice"}

    async def go() -> None:
        png = types.Part.from_bytes(data=b"\x89PNG\x00\xff" * 100, mime_type="image/png")
        assert await svc.save_artifact(**key, session_id="s1", filename="a.png", artifact=png) == 0
        v1 = types.Part(text="second")
        assert (
            await svc.save_artifact(
                **key,
                session_id="s1",
                filename="a.png",
                artifact=v1,
                custom_metadata={"by": "test"},
            )
            == 1
        )
        assert await other.load_artifact(**key, session_id="s1", filename="a.png") == v1
        back = await other.load_artifact(**key, session_id="s1", filename="a.png", version=0)
        assert back is not None and back.inline_data is not None
        assert back.inline_data.data == b"\x89PNG\x00\xff" * 100
        assert (
            await other.load_artifact(**key, session_id="s1", filename="a.png", version=7) is None
        )
        assert await other.load_artifact(**key, session_id="s2", filename="a.png") is None
        meta = await other.list_artifact_versions(**key, session_id="s1", filename="a.png")
        assert [(m.version, m.mime_type, m.custom_metadata) for m in meta] == [
            (0, "image/png", {}),
            (1, "text/plain", {"by": "test"}),
        ]
        # user: files are shared by the user's sessions; others need a session id.
        await svc.save_artifact(**key, filename="user:profile.txt", artifact=types.Part(text="p"))
        assert await other.list_artifact_keys(**key, session_id="s1") == [
            "a.png",
            "user:profile.txt",
        ]
        assert await other.list_artifact_keys(**key) == ["user:profile.txt"]
        with pytest.raises(InputValidationError):
            await svc.save_artifact(**key, filename="x", artifact=types.Part(text="x"))
        # Concurrent saves of one file: distinct versions, none lost.
        got = await asyncio.gather(
            *[
                (svc if i % 2 else other).save_artifact(
                    **key, session_id="s1", filename="race.txt", artifact=types.Part(text=str(i))
                )
                for i in range(8)
            ]
        )
        assert sorted(got) == list(range(8))
        assert await svc.list_versions(**key, session_id="s1", filename="race.txt") == list(
            range(8)
        )
        await svc.delete_artifact(**key, session_id="s1", filename="a.png")
        assert await other.load_artifact(**key, session_id="s1", filename="a.png") is None
        assert await other.list_artifact_keys(**key, session_id="s1") == [
            "race.txt",
            "user:profile.txt",
        ]

    run(go())
