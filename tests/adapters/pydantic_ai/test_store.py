"""BotWireConversationStore and the message-history helper in process, on each backend."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pa_helpers import echo_agent, user_prompts
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults
from pydantic_ai.conversation import Conversation
from pydantic_ai.conversation_store import ConversationConflict, InMemoryConversationStore
from pydantic_ai.messages import (
    BinaryContent,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.ui.vercel_ai import VercelAIAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from botwire import AsyncMemory, Memory
from botwire_pydantic_ai import (
    ENTRY_PREFIX,
    HISTORY_PREFIX,
    RECORD_PREFIX,
    SYSTEM_PROMPT_PREFIX,
    BotWireConversationStore,
    BotWireMessageHistory,
    run_with_history,
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def chat(store: Any, cid: str, *texts: str, scope: str | None = None) -> list[str]:
    outs = []
    for text in texts:
        conv = await store.load(cid, scope=scope) or Conversation(conversation_id=cid)
        result = await echo_agent().run(text, conversation=conv)
        await store.save(result, scope=scope)
        outs.append(result.output)
    return outs


def test_three_turns_like_the_in_memory_store(memory_url: str, namespace: str) -> None:
    """The same conversation through ours and Pydantic AI's reference store agrees."""

    async def main(store: Any) -> Any:
        outs = await chat(store, "c1", "I am Ada", "I like tea", "What do I like?")
        conv = await store.load("c1")
        last2 = await store.load("c1", limit=2)
        entries = await store.load_entries("c1")
        return outs, len(conv.messages), [m.kind for m in last2.messages], len(entries)

    ours = BotWireConversationStore(namespace, url=memory_url)
    assert run(main(ours)) == run(main(InMemoryConversationStore()))
    outs, n, _, _ = run(main(BotWireConversationStore(namespace + "-b", url=memory_url)))
    assert outs[2] == "saw 3: I am Ada | I like tea | What do I like?" and n == 6


def test_stale_save_is_the_frameworks_conflict_and_leaves_nothing(
    memory_url: str, namespace: str
) -> None:
    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url)
        await chat(store, "c", "first")
        a = await store.load("c")
        b = await store.load("c")
        a.messages.append(ModelRequest(parts=[UserPromptPart("from a")]))
        b.messages.append(ModelRequest(parts=[UserPromptPart("from b")]))
        await store.save(a)
        with Memory(namespace, url=memory_url) as m:
            before = m.list(ENTRY_PREFIX)
        with pytest.raises(ConversationConflict) as info:
            await store.save(b)
        assert info.value.conversation_id == "c"
        with Memory(namespace, url=memory_url) as m:
            assert m.list(ENTRY_PREFIX) == before  # the refused save left no entry behind
        # A conversation created twice from scratch: the second writer conflicts too.
        with pytest.raises(ConversationConflict):
            await store.save(Conversation(conversation_id="c", messages=b.messages))
        assert user_prompts((await store.load("c")).messages) == ["first", "from a"]

    run(main())


def test_write_record_cas_directly(memory_url: str, namespace: str) -> None:
    """The primitive itself: a stale expected_revision, or a head that is not stored."""
    from pydantic_ai.conversation_store import ConversationEntry, ConversationRecord

    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url)
        msg = ModelRequest(parts=[UserPromptPart("hi")])
        e = ConversationEntry(parent_id=None, message=msg)
        r1 = ConversationRecord(conversation_id="x", head_id=e.id)
        await store.write_record(r1, new_entries=[e], expected_revision=None)
        r2 = ConversationRecord(conversation_id="x", head_id=e.id)
        with pytest.raises(ConversationConflict):
            await store.write_record(r2, expected_revision="not-the-revision")
        await store.write_record(r2, expected_revision=r1.revision)
        r3 = ConversationRecord(conversation_id="x", head_id="missing-entry")
        with pytest.raises(ConversationConflict):
            await store.write_record(r3, expected_revision=r2.revision)
        with pytest.raises(ConversationConflict):
            await store.delete_record("x", expected_revision=r1.revision)
        await store.delete_record("x", expected_revision=r2.revision)
        assert await store.read_record("x") is None
        assert (await store.read_entry(e.id)).message == msg
        with pytest.raises(KeyError, match="nope"):
            await store.read_entry("nope")

    run(main())


def test_scope_list_delete_branch_and_fork(memory_url: str, namespace: str) -> None:
    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url)
        await chat(store, "ann-1", "a", "b", scope="ann")
        await chat(store, "bob-1", "x", scope="bob")
        assert [r.conversation_id for r in await store.list_conversations(scope="ann")] == ["ann-1"]
        assert {r.conversation_id for r in await store.list_conversations()} == {"ann-1", "bob-1"}
        assert await store.load("ann-1", scope="bob") is None  # another tenant's: not found
        entries = await store.load_entries("ann-1")
        fork = await store.fork("ann-1", from_entry=entries[1].id)
        assert len(fork.messages) == 2
        await store.save(Conversation(conversation_id="ann-1-copy"))
        await store.delete("bob-1", scope="ann")  # wrong scope: kept
        assert await store.load("bob-1") is not None
        await store.delete("bob-1", scope="bob")
        assert await store.load("bob-1") is None

    run(main())


def test_long_history_and_bytes_round_trip(memory_url: str, namespace: str) -> None:
    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url)
        png = bytes(range(256))
        conv = Conversation(conversation_id="long")
        conv.messages.append(
            ModelRequest(
                parts=[UserPromptPart(["look", BinaryContent(data=png, media_type="image/png")])]
            )
        )
        conv.messages += [ModelRequest(parts=[UserPromptPart(f"m{i}")]) for i in range(99)]
        await store.save(conv)
        started = time.perf_counter()
        loaded = await store.load("long")
        print(
            f"FIGURE pydantic-ai load of 100 messages: "
            f"{(time.perf_counter() - started) * 1000:.1f} ms on {memory_url.split(':')[0]}"
        )
        assert loaded is not None and len(loaded.messages) == 100
        assert loaded.messages[0].parts[0].content[1].data == png
        assert user_prompts((await store.load("long", limit=40)).messages) == [
            f"m{i}" for i in range(59, 99)
        ]
        with Memory(namespace, url=memory_url) as m:
            first = m.get(ENTRY_PREFIX + (await store.load_entries("long"))[0].id)
            assert "base64" in json.dumps(first) or isinstance(first["message"], dict)

    run(main())


def test_ttl_is_the_conversations_lifetime(memory_url: str, namespace: str) -> None:
    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url, ttl=600)
        await chat(store, "t", "one")
        with Memory(namespace, url=memory_url) as m:
            first = m.entry(RECORD_PREFIX + "t")
            assert first is not None and 500 < first.expires_at - time.time() <= 600
            await chat(store, "t", "two")
            again = m.entry(RECORD_PREFIX + "t")
            ids = [e.id for e in await store.load_entries("t")]
            entry_exp = [m.entry(ENTRY_PREFIX + i).expires_at for i in ids]
        # Later saves never outlive the first turn's messages.
        assert again.expires_at <= first.expires_at + 1
        assert all(e <= first.expires_at + 1 for e in entry_exp)

    run(main())


def test_a_late_fork_expires_with_the_history_it_shares(memory_url: str, namespace: str) -> None:
    """A fork made late in a TTL'd conversation must not outlive the entries it points at:
    a listed conversation always loads."""

    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url, ttl=600)
        await chat(store, "src", "hello")
        head = (await store.read_record("src")).head_id
        await asyncio.sleep(0.5)
        fork = await store.fork("src", new_conversation_id="fork")
        result = await echo_agent().run("more", conversation=fork)
        await store.save(result)  # the fork's own entries get no longer either
        # A store without ttl forking a TTL'd conversation: capped all the same.
        await BotWireConversationStore(namespace, url=memory_url).fork(
            "src", new_conversation_id="plain-fork"
        )
        with Memory(namespace, url=memory_url) as m:
            shared = m.entry(ENTRY_PREFIX + head).expires_at
            for cid in ("fork", "plain-fork"):
                record = m.entry(RECORD_PREFIX + cid)
                assert record.expires_at is not None and record.expires_at <= shared + 0.1, cid
            for entry in await store.load_entries("fork"):
                assert m.entry(ENTRY_PREFIX + entry.id).expires_at <= shared + 0.1

    async def short_lived() -> None:
        store = BotWireConversationStore(namespace + "-short", url=memory_url, ttl=1.5)
        await chat(store, "src", "hello")
        await asyncio.sleep(0.8)
        await store.fork("src", new_conversation_id="fork")
        await asyncio.sleep(0.9)  # the source and its entries have expired
        for record in await store.list_conversations():
            assert await store.load(record.conversation_id) is not None  # no KeyError
        assert await store.load("fork") is None

    run(main())
    run(short_lived())


def test_message_history_helper(memory_url: str, namespace: str) -> None:
    async def main() -> None:
        outs = [
            (
                await run_with_history(echo_agent(), t, "u1", namespace=namespace, url=memory_url)
            ).output
            for t in ("a", "b", "c")
        ]
        assert outs[2] == "saw 3: a | b | c"
        window = BotWireMessageHistory("u1", namespace=namespace, url=memory_url, max_messages=3)
        assert user_prompts(await window.load()) == ["c"]  # aligned to a user request
        await window.clear()
        assert await window.load() == []
        await window.aclose()
        with Memory(namespace, url=memory_url) as m:
            m.set(HISTORY_PREFIX + "bad", {"not": "a list"})
        with pytest.raises(Exception, match="bad") as info:
            await run_with_history(echo_agent(), "x", "bad", namespace=namespace, url=memory_url)
        assert namespace in str(info.value) + "".join(getattr(info.value, "__notes__", []))
        with Memory(namespace, url=memory_url) as m:
            assert m.get(HISTORY_PREFIX + "bad") == {"not": "a list"}  # nothing lost

    run(main())


def test_vercel_ai_ui_adapter_uses_the_store(memory_url: str, namespace: str) -> None:
    """A Vercel AI SDK chat endpoint (Starlette) with conversation_store=: the client sends only
    its new message, the server's store supplies the history."""
    store = BotWireConversationStore(namespace, url=memory_url)

    async def chat_endpoint(request: Request) -> Response:
        return await VercelAIAdapter.dispatch_request(
            request, agent=echo_agent(), conversation_store=store, conversation_scope="ann"
        )

    app = Starlette(routes=[Route("/api/chat", chat_endpoint, methods=["POST"])])
    with TestClient(app) as client:
        for i, text in enumerate(("I am Ada", "I like tea", "What do I like?")):
            body = {
                "trigger": "submit-message",
                "id": "chat-9",
                "messages": [
                    {"id": f"u{i}", "role": "user", "parts": [{"type": "text", "text": text}]}
                ],
            }
            reply = client.post("/api/chat", json=body)
            assert reply.status_code == 200, reply.text
    events = [
        json.loads(line[len("data: ") :])
        for line in reply.text.splitlines()
        if line.startswith("data: {")
    ]
    said = "".join(e["delta"] for e in events if e["type"] == "text-delta")
    assert said == "saw 3: I am Ada | I like tea | What do I like?"
    conv = run(store.load("chat-9", scope="ann"))
    assert conv is not None and user_prompts(conv.messages) == [
        "I am Ada",
        "I like tea",
        "What do I like?",
    ]


def test_racing_saves_of_one_revision_one_wins(memory_url: str, namespace: str) -> None:
    """Saves that both read the same revision before either commits: the atomic version
    check (not only the read-time revision compare) must turn one into a conflict."""

    async def main() -> None:
        store = BotWireConversationStore(namespace, url=memory_url)
        await chat(store, "r", "first")
        copies = [await store.load("r") for _ in range(4)]
        for i, conv in enumerate(copies):
            conv.messages.append(ModelRequest(parts=[UserPromptPart(f"writer {i}")]))
        outcomes = await asyncio.gather(*(store.save(c) for c in copies), return_exceptions=True)
        wins = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(wins) == 1, outcomes
        assert all(isinstance(o, ConversationConflict) for o in outcomes if o not in wins)
        prompts = user_prompts((await store.load("r")).messages)
        assert prompts[0] == "first" and len(prompts) == 2 and prompts[1].startswith("writer ")
        with Memory(namespace, url=memory_url) as m:
            assert len(m.list(ENTRY_PREFIX)) == 3  # 2 of the first turn + the winner's 1

    run(main())


def _kinds(messages: list[Any]) -> list[str]:
    return [p.part_kind for m in messages for p in m.parts]


def test_window_keeps_the_system_prompt(memory_url: str, namespace: str) -> None:
    """Pydantic AI adds system_prompt parts only to an empty history: once max_messages trims
    the first request away, the window must still open with them."""
    seen: list[list[Any]] = []
    calls = {"n": 0}

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(model), system_prompt="You are ACME support.")

    @agent.system_prompt(dynamic=True)
    def call_count() -> str:  # re-evaluated on every run, also when put back
        calls["n"] += 1
        return f"call {calls['n']}"

    async def main() -> None:
        for i in range(5):
            await run_with_history(
                agent, f"turn {i}", "c", namespace=namespace, url=memory_url, max_messages=4
            )
        for messages in seen:
            assert _kinds(messages)[:3] == ["system-prompt", "system-prompt", "user-prompt"]
            assert _kinds(messages).count("system-prompt") == 2
            assert messages[0].parts[0].content == "You are ACME support."
        assert seen[-1][0].parts[1].content == "call 5"  # the dynamic part, current
        assert user_prompts(seen[-1]) == ["turn 2", "turn 3", "turn 4"]
        with Memory(namespace, url=memory_url) as m:
            assert len(m.get(HISTORY_PREFIX + "c")) == 4  # trimmed: the prompt is kept apart
            assert m.contains(SYSTEM_PROMPT_PREFIX + "c")
        history = BotWireMessageHistory("c", namespace=namespace, url=memory_url)
        assert _kinds((await history.load())[:1]) == ["system-prompt"] * 2 + ["user-prompt"]
        await history.clear()
        await history.aclose()
        with Memory(namespace, url=memory_url) as m:
            assert not m.contains(SYSTEM_PROMPT_PREFIX + "c")

    run(main())


def test_system_prompt_of_an_untrimmed_history_survives_a_window(
    memory_url: str, namespace: str
) -> None:
    """Stored without max_messages (no prompt key), then loaded and trimmed with a window."""
    seen: list[list[Any]] = []

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(model), system_prompt="Be ACME.")

    async def main() -> None:
        kw: dict[str, Any] = {"namespace": namespace, "url": memory_url}
        for i in range(3):
            await run_with_history(agent, f"a{i}", "u", **kw)
        for i in range(3):  # each windowed turn trims the stored list further
            await run_with_history(agent, f"b{i}", "u", **kw, max_messages=2, ttl=600)
        assert all(_kinds(m)[:2] == ["system-prompt", "user-prompt"] for m in seen)
        assert user_prompts(seen[-1]) == ["b1", "b2"]
        with Memory(namespace, url=memory_url) as m:
            listed = m.entry(HISTORY_PREFIX + "u")
            prompt = m.entry(SYSTEM_PROMPT_PREFIX + "u")
        # Stored with the list's ttl, refreshed with it: it never expires first.
        assert prompt is not None and listed is not None
        assert abs(prompt.expires_at - listed.expires_at) < 5

    run(main())


def test_a_turn_longer_than_the_window_is_kept_whole(memory_url: str, namespace: str) -> None:
    """A tool-heavy turn of 8 messages with max_messages=4: the next turn still gets it, from
    its user request on (not an empty history)."""
    seen: list[list[Any]] = []

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        last = messages[-1].parts[-1]
        if user_prompts(messages)[-1] == "look up orders" and (
            last.part_kind == "user-prompt" or last.content != "order 3"
        ):
            n = sum(p.part_kind == "tool-return" for m in messages for p in m.parts)
            return ModelResponse(parts=[ToolCallPart("lookup", {"i": n + 1})])
        return ModelResponse(parts=[TextPart(f"saw {len(messages)}")])

    agent = Agent(FunctionModel(model))

    @agent.tool_plain
    def lookup(i: int) -> str:
        return f"order {i}"

    async def main() -> None:
        kw: dict[str, Any] = {"namespace": namespace, "url": memory_url, "max_messages": 4}
        first = await run_with_history(agent, "look up orders", "c", **kw)
        assert len(first.new_messages()) == 8
        await run_with_history(agent, "what did you find?", "c", **kw)
        assert user_prompts(seen[-1]) == ["look up orders", "what did you find?"]
        assert _kinds(seen[-1]).count("tool-return") == 3 and len(seen[-1]) == 9
        await run_with_history(agent, "thanks", "c", **kw)
        assert user_prompts(seen[-1]) == ["what did you find?", "thanks"]
        with Memory(namespace, url=memory_url) as m:
            assert len(m.get(HISTORY_PREFIX + "c")) == 4  # back to the window

    run(main())


def test_a_turn_resumed_without_a_prompt_keeps_its_request(memory_url: str, namespace: str) -> None:
    """Deferred tool approval: the second run has no user prompt; the window must still start
    at the turn's user request, with the call before its result."""
    seen: list[list[Any]] = []

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        if messages[-1].parts[-1].part_kind == "user-prompt" and user_prompts(messages)[-1] == (
            "refund me"
        ):
            return ModelResponse(parts=[ToolCallPart("refund", {"amount": 5}, tool_call_id="r1")])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(model), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def refund(amount: int) -> str:
        return f"refunded {amount}"

    async def main() -> None:
        kw: dict[str, Any] = {"namespace": namespace, "url": memory_url, "max_messages": 2}
        asked = await run_with_history(agent, "refund me", "c", **kw)
        assert isinstance(asked.output, DeferredToolRequests)
        approved = DeferredToolResults(approvals={"r1": True})
        await run_with_history(agent, None, "c", deferred_tool_results=approved, **kw)
        await run_with_history(agent, "and now?", "c", **kw)
        assert user_prompts(seen[-1]) == ["refund me", "and now?"]
        assert _kinds(seen[-1]) == [
            "user-prompt", "tool-call", "tool-return", "text", "user-prompt"
        ]  # fmt: skip

    run(main())


def test_add_without_load_and_a_history_with_no_user_request(
    memory_url: str, namespace: str
) -> None:
    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(model), system_prompt="S")

    async def main() -> None:
        aio = AsyncMemory(namespace, url=memory_url)  # shared by the objects below; closed once
        kw: dict[str, Any] = {"memory": aio, "max_messages": 2}
        # add() on an object that never loaded: the prompt is still stored, and refreshed.
        first = await agent.run("hi")
        await BotWireMessageHistory("s", **kw, ttl=600).add(first.new_messages())
        loaded = await BotWireMessageHistory("s", **kw).load()
        second = await agent.run("again", message_history=loaded)
        await BotWireMessageHistory("s", **kw, ttl=900).add(second.new_messages())
        window = await BotWireMessageHistory("s", **kw).load()
        assert _kinds(window) == ["system-prompt", "user-prompt", "text"]  # the newest turn
        with Memory(namespace, url=memory_url) as m:
            prompt = m.entry(SYSTEM_PROMPT_PREFIX + "s")
            assert prompt is not None and 800 < prompt.expires_at - time.time() <= 900
        # Nothing a window can start at: said, not silently dropped.
        await BotWireMessageHistory("w", **kw).add([ModelResponse(parts=[TextPart("orphan")])])
        with pytest.warns(RuntimeWarning, match=r"conversation 'w'.*no user request"):
            assert await BotWireMessageHistory("w", **kw).load() == []
        await aio.aclose()

    run(main())
