"""BotWireHistoryProvider with the real Agent loop, its contract and its errors."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from af_helpers import ScriptedChatClient, call, text_of
from agent_framework import Agent, Content, HistoryProvider, Message, tool

from botwire import AsyncMemory, Memory, NotSerializable, TypeMismatch
from botwire_agent_framework import BotWireHistoryProvider

KEY = "agent_framework/history/"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@tool
def lookup(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_is_a_history_provider_with_the_framework_flags(ns: str, memory_url: str) -> None:
    h = BotWireHistoryProvider(namespace=ns, url=memory_url, store_inputs=False)
    assert isinstance(h, HistoryProvider)
    assert h.source_id == "botwire_history" and h.store_inputs is False and h.namespace == ns
    assert BotWireHistoryProvider("mine", namespace=ns, url=memory_url).source_id == "mine"


def test_agent_loop_keeps_history_per_session(ns: str, memory_url: str) -> None:
    async def main() -> tuple[ScriptedChatClient, list[str], list[str]]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        client = ScriptedChatClient(
            [call("c1", "lookup", city="Oslo"), "Sunny in Oslo.", "Hello Bob.", "Still sunny."]
        )
        agent = Agent(client, tools=[lookup], context_providers=[h])
        ada, bob = agent.create_session(session_id="ada"), agent.create_session(session_id="bob")
        await agent.run("Weather in Oslo?", session=ada)
        await agent.run("Hi, I am Bob.", session=bob)
        await agent.run("And now?", session=ada)
        ada_msgs = [text_of(m) for m in await h.get_messages("ada")]
        bob_msgs = [text_of(m) for m in await h.get_messages("bob")]
        await h.aclose()
        return client, ada_msgs, bob_msgs

    client, ada, bob = run(main())
    assert ada == [
        "user: Weather in Oslo?",
        'assistant: call lookup({"city": "Oslo"})',
        "tool: result sunny in Oslo",
        "assistant: Sunny in Oslo.",
        "user: And now?",
        "assistant: Still sunny.",
    ]
    assert bob == ["user: Hi, I am Bob.", "assistant: Hello Bob."]
    assert client.seen[2] == ["user: Hi, I am Bob."]  # Bob's model never sees Ada's turns
    assert client.seen[3] == ada[:5]


def test_messages_round_trip_exactly_as_json(ns: str, memory_url: str) -> None:
    messages = [
        Message(role="system", contents=["Be brief."]),
        Message(
            role="user",
            contents=[
                "look: ",
                Content.from_data(data=b"\x00\xffbinary", media_type="application/octet-stream"),
                Content.from_uri("https://example.invalid/a#b?c", media_type="image/png"),
            ],
            author_name="ada",
            message_id="m-1",
            additional_properties={"lang": "nb", "n": [1, 2.5, None]},
        ),
        Message(role="assistant", contents=[call("c9", "lookup", city="Zürich ☃")]),
        Message(role="tool", contents=[Content.from_function_result(call_id="c9", result="ok")]),
    ]

    async def main() -> tuple[list[Message], Any]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        await h.save_messages("s", messages)
        got = await h.get_messages("s")
        await h.aclose()
        with Memory(ns, url=memory_url) as m:
            raw = m.get(KEY + "s")
        return got, raw

    got, raw = run(main())
    assert [m.to_dict() for m in got] == [m.to_dict() for m in messages]
    # Bytes are stored as the framework stores them: a base64 data URI inside plain JSON.
    assert raw[1]["contents"][1]["uri"] == "data:application/octet-stream;base64,AP9iaW5hcnk="
    uri = got[1].contents[1].uri or ""
    assert base64.b64decode(uri.split(",", 1)[1]) == b"\x00\xffbinary"


def test_each_save_is_one_append_and_loads_are_reads(ns: str, memory_url: str) -> None:
    """``save_messages`` is one write whatever the number of messages and never rewrites the
    history; ``get_messages`` writes nothing (the namespace's write counter tells)."""

    async def main() -> list[int]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        counts = []
        with Memory(ns, url=memory_url) as m:
            for i in range(3):
                turn = [Message(role="user", contents=[f"q{i}"])]
                turn += [Message(role="assistant", contents=[f"a{i}-{k}"]) for k in range(3)]
                await h.save_messages("s", turn)
                await h.get_messages("s")
                counts.append(m.usage().writes_today)
        await h.aclose()
        return counts

    assert run(main()) == [1, 2, 3]


def test_ttl_is_set_and_refreshed_by_each_save(ns: str, memory_url: str) -> None:
    async def main() -> tuple[float, float, float, float]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url, ttl=600)
        with Memory(ns, url=memory_url) as m:
            before = time.time()
            await h.save_messages("s", [Message(role="user", contents=["one"])])
            first = m.entry(KEY + "s").expires_at  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
            await h.save_messages("s", [Message(role="user", contents=["two"])])
            second = m.entry(KEY + "s").expires_at  # type: ignore[union-attr]
        await h.aclose()
        return before, first, second, time.time()

    before, first, second, after = run(main())
    assert first is not None and before + 600 - 2 <= first <= after + 600 + 2
    assert second is not None and second >= first


def test_ttl_expires_the_history(ns: str, memory_url: str) -> None:
    async def main() -> list[Message]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url, ttl=0.2)
        await h.save_messages("s", [Message(role="user", contents=["gone soon"])])
        await asyncio.sleep(1.0)
        got = await h.get_messages("s")
        await h.aclose()
        return got

    assert run(main()) == []


@pytest.mark.parametrize("ttl", [0, -1, "60", True, float("nan")])
def test_bad_ttl_is_refused_up_front(ttl: Any, ns: str, memory_url: str) -> None:
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        BotWireHistoryProvider(namespace=ns, url=memory_url, ttl=ttl)


def test_hostile_session_ids_stay_isolated(ns: str, memory_url: str) -> None:
    ids = ["a", "a#b", "a/b", "../a", "a b", "a%2Fb", "ünï☃", "a" * 900]

    async def main() -> dict[str, list[str]]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        for sid in ids:
            await h.save_messages(sid, [Message(role="user", contents=[f"I am {sid}"])])
        out = {sid: [m.text for m in await h.get_messages(sid)] for sid in ids}
        await h.aclose()
        return out

    assert run(main()) == {sid: [f"I am {sid}"] for sid in ids}


@pytest.mark.parametrize("sid", [None, ""])
def test_missing_session_id_is_a_clear_error(sid: Any, ns: str, memory_url: str) -> None:
    async def main() -> None:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        try:
            await h.save_messages(sid, [Message(role="user", contents=["x"])])
        finally:
            await h.aclose()

    with pytest.raises(ValueError, match=rf"session_id must be a non-empty string.*{ns}"):
        run(main())


def test_unserializable_message_names_the_session_and_stores_nothing(
    ns: str, memory_url: str
) -> None:
    async def main() -> list[Message]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        await h.save_messages("s", [Message(role="user", contents=["kept"])])
        bad = Message(role="user", contents=["x"], additional_properties={"score": float("nan")})
        try:
            with pytest.raises(NotSerializable) as info:
                await h.save_messages("s", [Message(role="user", contents=["ok"]), bad])
            assert "session 's'" in str(info.value) and ns in str(info.value)
            assert info.value.namespace == ns and info.value.key == KEY + "s"
            return await h.get_messages("s")
        finally:
            await h.aclose()

    assert [m.text for m in run(main())] == ["kept"]  # all or nothing: "ok" was not appended


def test_foreign_value_under_the_key_is_named_not_clobbered(ns: str, memory_url: str) -> None:
    with Memory(ns, url=memory_url) as m:
        m.set(KEY + "s", {"not": "a list"})
        m.set(KEY + "t", [{"type": "message", "role": "user", "contents": []}, 42])

    async def main() -> None:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        try:
            with pytest.raises(TypeError, match=r"holds a dict, not a list.*session 's'"):
                await h.get_messages("s")
            with pytest.raises(TypeMismatch, match=rf"session 's'.*namespace '{ns}'"):
                await h.save_messages("s", [Message(role="user", contents=["x"])])
            with pytest.raises(TypeError, match=r"item 1 of session 't'.*is a int"):
                await h.get_messages("t")
        finally:
            await h.aclose()

    run(main())
    with Memory(ns, url=memory_url) as m:
        assert m.get(KEY + "s") == {"not": "a list"}  # nothing stored is lost


def test_memory_argument_sync_or_async(ns: str, memory_url: str) -> None:
    async def main() -> tuple[list[str], list[str]]:
        with Memory(ns, url=memory_url) as sync_mem:
            h1 = BotWireHistoryProvider(memory=sync_mem)
            await h1.save_messages("s", [Message(role="user", contents=["from sync"])])
            await h1.aclose()
            assert sync_mem.get(KEY + "s")  # the Memory passed in is still open
        async with AsyncMemory(ns, url=memory_url) as async_mem:
            h2 = BotWireHistoryProvider(memory=async_mem)
            await h2.save_messages("s", [Message(role="user", contents=["from async"])])
            got = [m.text for m in await h2.get_messages("s")]
        h3 = BotWireHistoryProvider(namespace=ns + "-other", url=memory_url)
        other = [m.text for m in await h3.get_messages("s")]
        await h3.aclose()
        return got, other

    got, other = run(main())
    assert got == ["from sync", "from async"]
    assert other == []  # namespaces are isolated


def test_concurrent_saves_in_one_event_loop(ns: str, memory_url: str) -> None:
    async def main() -> list[str]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        await asyncio.gather(
            *(h.save_messages("s", [Message(role="user", contents=[f"m{i}"])]) for i in range(40))
        )
        got = [m.text for m in await h.get_messages("s")]
        await h.aclose()
        return got

    assert sorted(run(main()), key=lambda t: int(t[1:])) == [f"m{i}" for i in range(40)]


def test_streaming_run_is_saved_too(ns: str, memory_url: str) -> None:
    async def main() -> list[str]:
        h = BotWireHistoryProvider(namespace=ns, url=memory_url)
        agent = Agent(ScriptedChatClient(["streamed answer"]), context_providers=[h])
        session = agent.create_session(session_id="s")
        async for _ in agent.run("stream please", session=session, stream=True):
            pass
        got = [text_of(m) for m in await h.get_messages("s")]
        await h.aclose()
        return got

    assert run(main()) == ["user: stream please", "assistant: streamed answer"]


def test_one_provider_serves_warm_invocations_each_with_its_own_event_loop(
    ns: str, memory_url: str
) -> None:
    """A Lambda handler builds the provider once at import and calls ``asyncio.run`` per event."""
    h = BotWireHistoryProvider(namespace=ns, url=memory_url)
    agent = Agent(ScriptedChatClient(["one", "two", "three"]), context_providers=[h])

    def handler(text: str) -> str:
        session = agent.create_session(session_id="warm")
        return asyncio.run(agent.run(text, session=session)).text

    assert [handler("a"), handler("b"), handler("c")] == ["one", "two", "three"]
    got = asyncio.run(h.get_messages("warm"))
    assert [m.text for m in got] == ["a", "one", "b", "two", "c", "three"]
    asyncio.run(h.aclose())
