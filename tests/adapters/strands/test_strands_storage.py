"""``BotWireStorage`` against Strands' ``Storage`` protocol, on an embedded file and a real server.

Bytes round-trip exactly (text and binary), keys follow the shipped backends' rules, namespaced
views nest and stay isolated, search scores exactly like Strands' own ``KeywordSearchStrategy``,
and every failure is Strands' ``StorageError`` naming the namespace and the key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scripted import make_agent, reply_text
from strands.session import SnapshotSessionManager
from strands.storage import InMemoryStorage, Storage
from strands.storage.search.keyword import KeywordSearchStrategy
from strands.storage.storage import _resolve_namespace
from strands.types.exceptions import StorageError
from support.server import free_port

from botwire import Memory, Unavailable
from botwire_strands import BotWireStorage


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_bytes_round_trip_and_listing(memory: Memory) -> None:
    storage = BotWireStorage(memory=memory)
    assert isinstance(storage, Storage)
    blobs = {
        "a/text.json": b'{"messages": []}',
        "a/binary.bin": bytes(range(256)),  # not UTF-8
        "a/empty": b"",
        "b/odd key #?% \U0001f600": "caf\u00e9".encode(),
    }

    async def go() -> None:
        for key, data in blobs.items():
            await storage.write(key, data)
        for key, data in blobs.items():
            assert await storage.read(key) == data
        await storage.write("a/text.json", b"v2")  # overwrite
        assert await storage.read("a/text.json") == b"v2"
        assert await storage.read("a/missing") is None
        assert await storage.list("") == sorted(blobs)
        assert await storage.list("a/") == ["a/binary.bin", "a/empty", "a/text.json"]
        assert await storage.list("//a/") == await storage.list("a/")
        assert await storage.read("//a//empty/") == b""  # the shipped backends' normalization
        await storage.delete("a/empty")
        await storage.delete("a/empty")  # no-op when missing
        assert await storage.read("a/empty") is None

    run(go())


@pytest.mark.parametrize("key", ["", "/", "a/../b", "..", "a\\b"])
def test_bad_keys_are_refused_before_any_write(memory: Memory, key: str) -> None:
    storage = BotWireStorage(memory=memory)
    with pytest.raises(StorageError, match="Invalid storage key"):
        run(storage.write(key, b"x"))
    assert memory.list() == []


def test_writes_must_be_bytes(memory: Memory) -> None:
    with pytest.raises(StorageError, match="bytes, not str"):
        run(BotWireStorage(memory=memory).write("k", "text"))  # type: ignore[arg-type]


def test_namespaced_views_nest_and_stay_isolated(memory: Memory) -> None:
    root = BotWireStorage(memory=memory)
    session = _resolve_namespace(root, "session")  # what SnapshotSessionManager does
    assert isinstance(session, BotWireStorage)
    assert _resolve_namespace(session, "other") is session  # already scoped: kept as is
    agent = session.namespace("s1/").namespace("/agent")

    async def go() -> None:
        await agent.write("state.json", b"deep fact")
        await root.write("sessionx/state.json", b"sibling fact")
        assert await root.read("session/s1/agent/state.json") == b"deep fact"
        assert await session.list("") == ["s1/agent/state.json"]
        assert await agent.list("") == ["state.json"]
        assert [r.key for r in await agent.search("fact")] == ["state.json"]
        assert sorted(r.key for r in await root.search("fact")) == [
            "session/s1/agent/state.json",
            "sessionx/state.json",
        ]

    run(go())


def test_search_scores_like_strands_keyword_strategy(memory: Memory) -> None:
    docs = {
        "notes/dark-mode.md": b"The dark mode toggle lives in settings",
        "notes/billing.md": b"Invoices are sent monthly",
        "notes/toggle.txt": b"feature flags toggle features",
        "prefs/theme.json": b'{"mode": "dark"}',
        "blob.bin": b"\xff\xfe dark",
    }
    ours = BotWireStorage(memory=memory)
    reference = InMemoryStorage()

    async def go() -> tuple[Any, Any]:
        for key, data in docs.items():
            await ours.write(key, data)
            await reference.write(key, data)
        query = "what is the dark mode toggle?"
        return await ours.search(query), await KeywordSearchStrategy().search(reference, query)

    mine, theirs = run(go())
    assert [(r.key, r.score, r.data) for r in mine] == [(r.key, r.score, r.data) for r in theirs]
    assert mine[0].key == "notes/dark-mode.md"
    assert run(ours.search("the of and")) == []  # only stop words


def test_a_value_it_did_not_write_is_a_clear_error(memory: Memory) -> None:
    memory.set("foreign", 42)
    storage = BotWireStorage(memory=memory)
    with pytest.raises(StorageError, match=r"'foreign'.*namespace of its own"):
        run(storage.read("foreign"))
    run(storage.write("mine", b"dark"))
    assert [r.key for r in run(storage.search("dark"))] == ["mine"]  # skipped, not fatal


def test_backend_failures_are_storage_errors_naming_namespace_and_key() -> None:
    dead = Memory("strands-dead", url=f"http://127.0.0.1:{free_port()}", retries=0, timeout=1)
    storage = BotWireStorage(memory=dead).namespace("session")
    with pytest.raises(StorageError, match=r"namespace 'strands-dead', key 'session/k'") as err:
        run(storage.write("k", b"x"))
    assert isinstance(err.value.__cause__, Unavailable)
    dead.close()


def test_agent_level_storage_feeds_the_snapshot_session_manager(memory: Memory) -> None:
    """``Agent(storage=...)``: the session manager resolves the agent's storage and namespaces
    itself under ``session/``."""
    storage = BotWireStorage(memory=memory)
    agent = make_agent(SnapshotSessionManager("s1"), storage=storage)
    agent("remember the blue door")
    assert memory.list() == ["session/s1/scopes/agent/default/snapshots/snapshot_latest.json"]
    again = make_agent(SnapshotSessionManager("s1"), storage=BotWireStorage(memory=memory))
    assert "history 3" in reply_text(again("which door?"))


def test_reexports_from_botwire_and_the_clashing_name_is_not_one() -> None:
    import botwire
    import botwire_strands

    assert botwire.BotWireSessionRepository is botwire_strands.BotWireSessionRepository
    assert botwire.InvocationGuard is botwire_strands.InvocationGuard
    # CrewAI has one too: botwire names both package imports instead of picking one
    with pytest.raises(ImportError) as caught:
        botwire.BotWireStorage  # noqa: B018
    assert "from botwire_strands import" in str(caught.value)
    assert "from botwire_crewai import" in str(caught.value)


def test_a_value_over_the_limit_is_a_clear_error_and_nothing_is_lost(tmp_path: Any) -> None:
    """A snapshot bigger than the store's value limit: Strands' error names the namespace,
    the key and botwire's rule; the previous snapshot stays readable."""
    from botwire import Limits, ValueTooLarge
    from botwire.store import SQLiteStore

    store = SQLiteStore(str(tmp_path / "small.db"), limits=Limits(max_value_bytes=2000))
    try:
        storage = BotWireStorage(memory=Memory("strands-small", store=store))
        run(storage.write("snap.json", b"x" * 100))
        with pytest.raises(StorageError, match=r"namespace 'strands-small', key 'snap.json'") as e:
            run(storage.write("snap.json", b"x" * 5000))
        assert isinstance(e.value.__cause__, ValueTooLarge)
        assert run(storage.read("snap.json")) == b"x" * 100
    finally:
        store.close()
