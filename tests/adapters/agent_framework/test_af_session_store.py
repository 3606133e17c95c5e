"""BotWireSessionStore: the framework's SessionStore contract, TTL, errors, and a real agent."""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

import pytest
from af_helpers import ScriptedChatClient, text_of
from agent_framework import Agent, AgentSession, Message, SessionStore

from botwire import Memory, NotSerializable

with warnings.catch_warnings():  # the framework's SessionStore is experimental and says so
    warnings.filterwarnings("ignore", message=r"\[SESSION_STORE\]")
    from botwire_agent_framework import BotWireSessionStore

KEY = "agent_framework/session/"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_get_set_delete_contract(ns: str, memory_url: str) -> None:
    async def main() -> None:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        assert isinstance(store, SessionStore)
        assert await store.get("s") is None
        session = AgentSession(session_id="s", service_session_id="resp_123")
        session.state.update({"n": 1, "tags": ["a", "b"], "nested": {"x": None}})
        await store.set("s", session)
        got = await store.get("s")
        assert got is not None and got is not session
        assert got.to_dict() == session.to_dict()
        # Reads are independent working copies, as the framework's own stores promise.
        got.state["n"] = 99
        again = await store.get("s")
        assert again is not None and again.state["n"] == 1
        # set replaces; the stored id is the store's key, not the session's own id.
        other = AgentSession(session_id="other")
        await store.set("s", other)
        replaced = await store.get("s")
        assert replaced is not None and replaced.session_id == "other" and replaced.state == {}
        await store.delete("s")
        assert await store.get("s") is None
        await store.delete("s")  # deleting what is absent is fine
        await store.aclose()

    run(main())


def test_state_with_messages_survives_as_plain_json(ns: str, memory_url: str) -> None:
    """The framework's default InMemoryHistoryProvider keeps Message objects in session.state:
    with BotWireSessionStore that history survives a new process (simulated by a new store)."""

    async def main() -> tuple[list[str], dict[str, Any]]:
        agent = Agent(ScriptedChatClient(["Hi Ada.", "You are Ada."]))
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        session = agent.create_session(session_id="ada")
        await agent.run("I am Ada.", session=session)
        await store.set("ada", session)
        await store.aclose()

        client = ScriptedChatClient(["You are Ada."])
        fresh_agent = Agent(client)
        fresh_store = BotWireSessionStore(namespace=ns, url=memory_url)
        restored = await fresh_store.get("ada")
        assert restored is not None
        await fresh_agent.run("Who am I?", session=restored)
        await fresh_store.aclose()
        with Memory(ns, url=memory_url) as m:
            raw = m.get(KEY + "ada")
        return client.seen[0], raw

    seen, raw = run(main())
    assert seen == ["user: I am Ada.", "assistant: Hi Ada.", "user: Who am I?"]
    assert raw["type"] == "session" and raw["session_id"] == "ada"
    stored = raw["state"]["in_memory"]["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]


def test_ttl_is_set_on_every_set(ns: str, memory_url: str) -> None:
    async def main() -> tuple[float, Any]:
        store = BotWireSessionStore(namespace=ns, url=memory_url, ttl=3600)
        before = time.time()
        await store.set("s", AgentSession(session_id="s"))
        await store.aclose()
        with Memory(ns, url=memory_url) as m:
            return before, m.entry(KEY + "s")

    before, entry = run(main())
    assert entry is not None and entry.expires_at is not None
    assert before + 3600 - 2 <= entry.expires_at <= time.time() + 3600 + 2


def test_ttl_expires_the_session(ns: str, memory_url: str) -> None:
    async def main() -> AgentSession | None:
        store = BotWireSessionStore(namespace=ns, url=memory_url, ttl=0.2)
        await store.set("s", AgentSession(session_id="s"))
        await asyncio.sleep(1.0)
        got = await store.get("s")
        await store.aclose()
        return got

    assert run(main()) is None


def test_unserializable_state_names_the_session_and_keeps_the_old_snapshot(
    ns: str, memory_url: str
) -> None:
    async def main() -> AgentSession | None:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        good = AgentSession(session_id="s")
        good.state["n"] = 1
        await store.set("s", good)
        bad = AgentSession(session_id="s")
        bad.state["score"] = float("inf")
        with pytest.raises(NotSerializable) as info:
            await store.set("s", bad)
        assert "session 's'" in str(info.value) and f"namespace '{ns}'" in str(info.value)
        got = await store.get("s")
        await store.aclose()
        return got

    got = run(main())
    assert got is not None and got.state == {"n": 1}


@pytest.mark.parametrize("sid", ["", None, 7])
def test_bad_session_id_is_a_clear_error(sid: Any, ns: str, memory_url: str) -> None:
    async def main() -> None:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        try:
            for op in (store.get(sid), store.set(sid, AgentSession()), store.delete(sid)):
                with pytest.raises(ValueError, match=rf"non-empty string.*namespace '{ns}'"):
                    await op
        finally:
            await store.aclose()

    run(main())


def test_foreign_value_is_named_not_misread(ns: str, memory_url: str) -> None:
    with Memory(ns, url=memory_url) as m:
        m.set(KEY + "s", ["not", "a", "snapshot"])

    async def main() -> None:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        try:
            with pytest.raises(ValueError, match=r"does not hold an AgentSession.*session 's'"):
                await store.get("s")
        finally:
            await store.aclose()

    run(main())


def test_hostile_ids_and_namespaces_stay_isolated(ns: str, memory_url: str) -> None:
    ids = ["a", "a#b", "../a", "a/b", "ünï☃"]

    async def main() -> tuple[dict[str, Any], Any]:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        for sid in ids:
            s = AgentSession(session_id=sid)
            s.state["me"] = sid
            await store.set(sid, s)
        out = {}
        for sid in ids:
            got = await store.get(sid)
            out[sid] = got.state["me"] if got else None
        other = BotWireSessionStore(namespace=ns + "-other", url=memory_url)
        elsewhere = await other.get("a")
        await store.aclose()
        await other.aclose()
        return out, elsewhere

    out, elsewhere = run(main())
    assert out == {sid: sid for sid in ids}
    assert elsewhere is None


def test_messages_in_state_round_trip(ns: str, memory_url: str) -> None:
    async def main() -> list[str]:
        store = BotWireSessionStore(namespace=ns, url=memory_url)
        s = AgentSession(session_id="s")
        s.state["pinned"] = [Message(role="user", contents=["remember this"])]
        await store.set("s", s)
        got = await store.get("s")
        await store.aclose()
        assert got is not None
        return [text_of(m) for m in got.state["pinned"]]

    assert run(main()) == ["user: remember this"]
