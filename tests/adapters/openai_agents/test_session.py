"""BotWireSession and BotWireRunStore in process, on each backend (embedded and HTTP)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from agents import Runner, SQLiteSession
from agents.extensions.memory import EncryptedSession
from agents.memory import SessionABC, SessionSettings
from oa_helpers import EchoModel, echo_agent, refund_agent

from botwire import AsyncMemory, Memory, TypeMismatch
from botwire_openai_agents import SESSION_KEY_PREFIX, BotWireRunStore, BotWireSession


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def items(*texts: str) -> list[Any]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]


def test_is_a_session_abc_and_behaves_like_the_sdks_sqlite_session(
    memory_url: str, ns: str
) -> None:
    """The same calls on BotWireSession and the SDK's own SQLiteSession give the same answers."""

    async def script(session: Any) -> list[Any]:
        out: list[Any] = [await session.get_items(), await session.pop_item()]
        await session.add_items(items("a", "b", "c"))
        await session.add_items([])
        await session.add_items(items("d", "e"))
        out += [
            await session.get_items(),
            await session.get_items(2),
            await session.get_items(0),
            await session.get_items(99),
            await session.get_items(-1),  # SQLite's LIMIT -1: every item, not []
            await session.get_items(-3),
        ]
        out += [await session.pop_item(), await session.get_items()]
        await session.clear_session()
        out += [await session.get_items(), await session.pop_item()]
        return out

    ours = BotWireSession("s-1", namespace=ns, url=memory_url)
    assert isinstance(ours, SessionABC)
    reference = SQLiteSession("s-1")
    assert run(script(ours)) == run(script(reference))
    run(ours.aclose())


def test_session_settings_limit_and_isolation(memory_url: str, ns: str) -> None:
    a = BotWireSession(
        "alice", namespace=ns, url=memory_url, session_settings=SessionSettings(limit=2)
    )
    b = BotWireSession("bob", namespace=ns, url=memory_url)
    run(a.add_items(items("a1", "a2", "a3")))
    run(b.add_items(items("b1")))
    assert [i["content"] for i in run(a.get_items())] == ["a2", "a3"]  # settings' limit
    assert [i["content"] for i in run(a.get_items(3))] == ["a1", "a2", "a3"]  # explicit wins
    assert [i["content"] for i in run(b.get_items())] == ["b1"]
    # A negative limit is "no limit" as in SQLiteSession, from settings or given explicitly.
    every = BotWireSession(
        "alice", namespace=ns, url=memory_url, session_settings=SessionSettings(limit=-1)
    )
    assert [i["content"] for i in run(every.get_items())] == ["a1", "a2", "a3"]
    assert [i["content"] for i in run(a.get_items(-1))] == ["a1", "a2", "a3"]
    assert run(a.get_items(0)) == []
    run(every.aclose())
    run(a.aclose())
    run(b.aclose())


def test_sessions_without_namespace_are_isolated_namespaces(memory_url: str) -> None:
    s = BotWireSession("user 42/chat", url=memory_url)
    t = BotWireSession("user-43", url=memory_url)
    assert s.namespace != t.namespace and t.namespace == "user-43"
    assert s.namespace.startswith("oa-user_42_chat-")


def test_max_items_keeps_the_newest_and_the_policy_bounds_it(memory_url: str, ns: str) -> None:
    """``max_items`` trims in the same append; a namespace retention policy (issue 18) lowers a
    larger one, so an operator bounds every session whatever its code asks."""
    s = BotWireSession("bounded", namespace=ns, url=memory_url, max_items=3)
    run(s.add_items(items("a", "b")))
    run(s.add_items(items("c", "d", "e")))
    assert [i["content"] for i in run(s.get_items())] == ["c", "d", "e"]
    with Memory(ns, url=memory_url) as m:
        m.set_policy(max_list_len=2)
        run(
            BotWireSession("wide", namespace=ns, url=memory_url, max_items=50).add_items(
                items("x", "y", "z")
            )
        )
        assert m.get(SESSION_KEY_PREFIX + "wide") == items("x", "y", "z")[1:]
        m.set_policy(max_list_len=None)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_items"):
            BotWireSession("s", namespace=ns, url=memory_url, max_items=bad)  # type: ignore[arg-type]
    run(s.aclose())


def test_ttl_is_set_and_refreshed_by_each_add(memory_url: str, ns: str) -> None:
    s = BotWireSession("ttl", namespace=ns, url=memory_url, ttl=600)
    run(s.add_items(items("x")))
    with Memory(ns, url=memory_url) as m:
        e = m.entry(SESSION_KEY_PREFIX + "ttl")
        assert e is not None and e.expires_at is not None
        assert 500 < e.expires_at - time.time() <= 600
    run(s.aclose())


def test_bad_input_names_session_namespace_and_rule(memory_url: str, ns: str) -> None:
    with pytest.raises(ValueError, match="non-empty string session_id"):
        BotWireSession("", namespace=ns, url=memory_url)
    with pytest.raises(ValueError, match="ttl must be a positive"):
        BotWireSession("s", namespace=ns, url=memory_url, ttl=0)
    with Memory(ns, url=memory_url) as m:
        m.set(SESSION_KEY_PREFIX + "clash", "not a list")
    s = BotWireSession("clash", namespace=ns, url=memory_url)
    with pytest.raises(TypeMismatch) as info:
        run(s.add_items(items("x")))
    assert "session 'clash'" in "".join(getattr(info.value, "__notes__", []))
    assert ns in str(info.value) + "".join(info.value.__notes__)
    with pytest.raises(TypeError, match=r"'openai-agents/session/clash'.*not the item list"):
        run(s.get_items())
    with Memory(ns, url=memory_url) as m:
        assert m.get(SESSION_KEY_PREFIX + "clash") == "not a list"  # nothing stored is lost
    run(s.aclose())


def test_agent_runs_on_an_async_memory(memory_url: str, ns: str) -> None:
    async def main() -> list[str]:
        async with AsyncMemory(ns, url=memory_url) as aio:
            session = BotWireSession("chat", memory=aio)
            outs = []
            for text in ("one", "two"):
                result = await Runner.run(echo_agent(), text, session=session)
                outs.append(result.final_output)
            return outs

    assert run(main()) == ["saw 1 user messages: one", "saw 2 user messages: one | two"]


def test_encrypted_session_wraps_botwire_session(memory_url: str, ns: str) -> None:
    key = "a-long-enough-master-secret-for-tests-0123456789"

    async def main() -> tuple[list[Any], str, list[Any]]:
        inner = BotWireSession("secret", namespace=ns, url=memory_url)
        session = EncryptedSession("secret", inner, encryption_key=key)
        model = EchoModel()
        for text in ("my PIN is 4921", "what is my PIN?"):
            result = await Runner.run(echo_agent(model), text, session=session)
        wrong = EncryptedSession("secret", inner, encryption_key="another-secret-" + "x" * 40)
        return await session.get_items(), result.final_output, await wrong.get_items()

    plain, output, with_wrong_key = run(main())
    assert output == "saw 2 user messages: my PIN is 4921 | what is my PIN?"
    assert [i.get("content") for i in plain if i.get("role") == "user"] == [
        "my PIN is 4921",
        "what is my PIN?",
    ]
    assert with_wrong_key == []  # undecryptable items are skipped, not leaked
    with Memory(ns, url=memory_url) as m:
        stored = m.get(SESSION_KEY_PREFIX + "secret")
    assert len(stored) == 4 and "4921" not in repr(stored)  # only ciphertext in botwire


def test_run_store_park_resume_claim_and_ttl(memory_url: str, ns: str) -> None:
    async def main() -> None:
        runs = BotWireRunStore(ns, url=memory_url, ttl=900)
        session = BotWireSession("cust", namespace=ns, url=memory_url)
        result = await Runner.run(refund_agent(), "refund please", session=session)
        assert [i.tool_name for i in result.interruptions] == ["refund"]
        await runs.park("r1", result)
        async with AsyncMemory(ns, url=memory_url) as aio:
            e = await aio.entry("openai-agents/run/r1")
            assert e is not None and e.expires_at is not None
            assert 800 < e.expires_at - time.time() <= 900
        # Two approvals race for one parked run: exactly one gets it.
        got = await asyncio.gather(
            runs.resume(refund_agent(), "r1"), runs.resume(refund_agent(), "r1")
        )
        assert sum(s is not None for s in got) == 1
        state = next(s for s in got if s is not None)
        for item in state.get_interruptions():
            state.reject(item)
        final = await Runner.run(refund_agent(), state, session=session)
        assert "tool said" in final.final_output and "refunded" not in final.final_output
        assert await runs.resume(refund_agent(), "never-parked") is None
        assert await runs.discard("r1") is False
        with pytest.raises(ValueError, match="run_id"):
            await runs.park("", result)
        await runs.aclose()
        await session.aclose()

    run(main())


def test_concurrent_add_items_in_process_lose_nothing(memory_url: str, ns: str) -> None:
    """Many add_items at once from separate session objects (as separate instances would)."""

    async def main() -> list[str]:
        sessions = [BotWireSession("busy", namespace=ns, url=memory_url) for _ in range(4)]
        await asyncio.gather(
            *(
                s.add_items(items(f"s{k}-{i}-q", f"s{k}-{i}-a"))
                for i in range(10)
                for k, s in enumerate(sessions)
            )
        )
        got = [i["content"] for i in await sessions[0].get_items()]
        for s in sessions:
            await s.aclose()
        return got

    got = run(main())
    assert sorted(got) == sorted(f"s{k}-{i}-{x}" for k in range(4) for i in range(10) for x in "qa")
    for k in range(0, len(got), 2):  # each call's items stay together
        assert got[k + 1] == got[k][:-1] + "a"
