"""BotWireMemory: the autogen_core Memory interface, Component round trip, edge cases."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from autogen_core import ComponentModel, Image
from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
from autogen_core.memory import Memory as AutoGenMemory
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import SystemMessage, UserMessage
from PIL import Image as PILImage

from botwire import AsyncMemory, Memory, NotSerializable
from botwire_autogen import BotWireMemory, BotWireMemoryConfig

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


def text(s: str, **meta: Any) -> MemoryContent:
    return MemoryContent(content=s, mime_type=MemoryMimeType.TEXT, metadata=meta or None)


FACTS = [
    "Alice prefers green tea in the morning",
    "Bob drinks coffee",
    "The weekly meeting is on Monday",
    "Alice lives in Lisbon",
]


def test_is_an_autogen_memory_and_component(memory_url: str, ns: str) -> None:
    m = BotWireMemory(ns, url=memory_url)
    assert isinstance(m, AutoGenMemory)
    assert m.component_type == "memory"
    assert (m.name, m.namespace, m.key) == (f"botwire:{ns}", ns, "memories")


def test_every_content_type_round_trips(memory_url: str, ns: str) -> None:
    buf = io.BytesIO()
    PILImage.new("RGB", (2, 1), (255, 0, 0)).save(buf, format="PNG")
    image = Image.from_pil(PILImage.open(io.BytesIO(buf.getvalue())))
    items = [
        text("plain ✓", source="user", n=1),
        MemoryContent(content={"a": [1, None, True]}, mime_type=MemoryMimeType.JSON),
        MemoryContent(content=b"\x00\xffbinary", mime_type=MemoryMimeType.BINARY),
        MemoryContent(content=image, mime_type=MemoryMimeType.IMAGE),
        MemoryContent(content="# md", mime_type="text/markdown"),
    ]

    async def scenario() -> list[MemoryContent]:
        m = BotWireMemory(ns, url=memory_url)
        for item in items:
            await m.add(item)
        await m.close()
        fresh = BotWireMemory(ns, url=memory_url)  # a new client sees the same
        try:
            return await fresh.contents()
        finally:
            await fresh.close()

    got = run(scenario)
    assert [g.content for g in got[:3]] == ["plain ✓", {"a": [1, None, True]}, b"\x00\xffbinary"]
    assert got[0].metadata == {"source": "user", "n": 1}
    assert isinstance(got[3].content, Image) and got[3].content.image.size == (2, 1)
    assert got[3].content.to_base64() == image.to_base64()
    assert [(g.mime_type, type(g.mime_type)) for g in got] == [
        (i.mime_type, type(i.mime_type)) for i in items
    ]  # the enum where the enum was added, the str where a str was


def test_mime_type_comes_back_as_added_as_in_list_memory(memory_url: str, ns: str) -> None:
    """``MemoryMimeType`` is a plain Enum: ``MemoryMimeType.TEXT != "text/plain"``, so the
    enum and its str are different answers; ListMemory returns exactly what was added."""
    items = [
        text("enum"),
        MemoryContent(content="str of an enum value", mime_type="text/plain"),
        MemoryContent(content={"k": 1}, mime_type=MemoryMimeType.JSON),
        MemoryContent(content="# str", mime_type="text/markdown"),
        MemoryContent(content="custom", mime_type="application/x-custom"),
    ]

    async def scenario() -> tuple[list[MemoryContent], list[MemoryContent]]:
        ours, reference = BotWireMemory(ns, url=memory_url, match="all"), ListMemory()
        for item in items:
            await ours.add(item)
            await reference.add(item)
        got, want = (await ours.query("")).results, (await reference.query("")).results
        await ours.close()
        return got, want

    got, want = run(scenario)
    assert want == items
    assert got == items
    assert [type(g.mime_type) for g in got] == [type(i.mime_type) for i in items]
    assert got[0].mime_type == MemoryMimeType.TEXT and got[1].mime_type == "text/plain"


def test_items_stored_before_the_enum_flag_get_the_enum_back(memory_url: str, ns: str) -> None:
    """Older items hold only the string: a MemoryMimeType value comes back as the enum
    (AutoGen's own form), any other string as it is; no mime type at all meant text."""
    old = [
        {"kind": "text", "content": "a", "mime_type": "text/plain", "metadata": None},
        {"kind": "json", "content": {"k": 1}, "mime_type": "application/json", "metadata": None},
        {"kind": "text", "content": "c", "mime_type": "application/x-custom", "metadata": None},
        {"kind": "text", "content": "d", "metadata": None},
    ]
    with Memory(ns, url=memory_url) as raw:
        raw.set("memories", old)

    async def scenario() -> list[MemoryContent]:
        m = BotWireMemory(ns, url=memory_url)
        try:
            return await m.contents()
        finally:
            await m.close()

    got = [(g.mime_type, type(g.mime_type)) for g in run(scenario)]
    assert got == [
        (MemoryMimeType.TEXT, MemoryMimeType),
        (MemoryMimeType.JSON, MemoryMimeType),
        ("application/x-custom", str),
        (MemoryMimeType.TEXT, MemoryMimeType),
    ]


def test_query_ranks_by_word_overlap(memory_url: str, ns: str) -> None:
    async def scenario() -> dict[str, Any]:
        m = BotWireMemory(ns, url=memory_url, max_results=2)
        for f in FACTS:
            await m.add(text(f))
        out = {
            "tea": await m.query("What tea does Alice prefer?"),
            "alice": await m.query("alice"),
            "plural": await m.query("who drink coffees"),
            "none": await m.query("quantum chromodynamics"),
            "empty": await m.query(""),
            "content": await m.query(text("meeting Monday")),
            "limit": await m.query("alice", max_results=1),
        }
        await m.close()
        return {
            k: [(r.content, (r.metadata or {}).get("score")) for r in v.results]
            for k, v in out.items()
        }

    got = run(scenario)
    assert got["tea"][0] == (FACTS[0], 1.0)  # tea, alice, prefer — all three found
    assert got["tea"][1] == (FACTS[3], pytest.approx(1 / 3))
    assert [c for c, _ in got["alice"]] == [FACTS[3], FACTS[0]]  # equal scores: newest first
    assert got["plural"] == [(FACTS[1], 1.0)]  # "drinks"/"drink", "coffees"/"coffee"
    assert got["none"] == []
    assert [c for c, _ in got["empty"]] == FACTS[2:]  # no words: most recent, in order
    assert got["content"] == [(FACTS[2], 1.0)]
    assert [c for c, _ in got["limit"]] == [FACTS[3]]


def test_update_context_adds_one_system_message(memory_url: str, ns: str) -> None:
    async def scenario() -> tuple[Any, ...]:
        m = BotWireMemory(ns, url=memory_url, max_results=2)
        empty_ctx = BufferedChatCompletionContext(buffer_size=10)
        await empty_ctx.add_message(UserMessage(content="hi", source="user"))
        nothing = await m.update_context(empty_ctx)
        for f in FACTS:
            await m.add(text(f))
        ctx = BufferedChatCompletionContext(buffer_size=10)
        await ctx.add_message(UserMessage(content="Where does Alice live?", source="user"))
        relevant = await m.update_context(ctx)
        ctx2 = BufferedChatCompletionContext(buffer_size=10)
        await ctx2.add_message(UserMessage(content="zzz", source="user"))
        fallback = await m.update_context(ctx2)
        await m.close()
        return (
            nothing,
            await empty_ctx.get_messages(),
            relevant,
            await ctx.get_messages(),
            fallback,
            await ctx2.get_messages(),
        )

    nothing, msgs0, relevant, msgs, fallback, msgs2 = run(scenario)
    assert nothing.memories.results == [] and len(msgs0) == 1
    assert [r.content for r in relevant.memories.results] == [FACTS[3], FACTS[0]]
    assert len(msgs) == 2 and isinstance(msgs[1], SystemMessage)
    assert msgs[1].content == (f"\nRelevant memory content:\n1. {FACTS[3]}\n2. {FACTS[0]}\n")
    # Nothing shares a word with "zzz": the most recent memories are offered instead.
    assert [r.content for r in fallback.memories.results] == FACTS[2:]
    assert isinstance(msgs2[1], SystemMessage) and FACTS[3] in msgs2[1].content


def test_clear_removes_only_the_memories(memory_url: str, ns: str) -> None:
    with Memory(ns, url=memory_url) as raw:
        raw.set("other", 1)

        async def scenario() -> list[MemoryContent]:
            m = BotWireMemory(ns, url=memory_url)
            await m.add(text("x"))
            await m.clear()
            await m.clear()  # idempotent
            out = await m.contents()
            await m.close()
            return out

        assert run(scenario) == []
        assert raw.list() == ["other"]


def test_component_round_trip_keeps_backend_not_token(
    memory_url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = BotWireMemory(
        ns, url=memory_url, key="facts", max_results=3, token="s3cr3t", token_env="MY_BOTWIRE_TOKEN"
    )
    with pytest.warns(UserWarning, match="token is not written"):
        dumped = m.dump_component()
    assert "s3cr3t" not in dumped.model_dump_json()
    assert dumped.provider == "botwire_autogen.BotWireMemory"
    assert (
        dumped.config
        == BotWireMemoryConfig(
            namespace=ns,
            url=memory_url,
            key="facts",
            max_results=3,
            name=f"botwire:{ns}",
            token_env="MY_BOTWIRE_TOKEN",
        ).model_dump()
    )

    monkeypatch.setenv("MY_BOTWIRE_TOKEN", "from-env")
    loaded = AutoGenMemory.load_component(
        ComponentModel.model_validate_json(dumped.model_dump_json())
    )
    assert isinstance(loaded, BotWireMemory)
    assert (loaded.namespace, loaded.key) == (ns, "facts")

    async def scenario() -> list[Any]:
        await m.add(text("shared"))
        out = [c.content for c in await loaded.contents()]
        await m.close()
        await loaded.close()
        return out

    assert run(scenario) == ["shared"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BotWireMemory(ns, url=memory_url).dump_component()  # no token: no warning


def test_built_from_existing_clients(memory_url: str, ns: str) -> None:
    sync = Memory(ns, url=memory_url)
    amem = AsyncMemory(ns, url=memory_url)

    async def scenario() -> list[Any]:
        a = BotWireMemory(memory=sync)
        b = BotWireMemory(memory=amem)
        await a.add(text("via sync"))
        await b.add(text("via async"))
        out = [c.content for c in await b.contents()]
        await a.close()
        await b.close()  # not owned: stays open
        assert await amem.get("memories") is not None
        await amem.aclose()
        return out

    assert run(scenario) == ["via sync", "via async"]
    with pytest.warns(UserWarning, match="without url="):
        assert BotWireMemory(memory=sync).dump_component().config.get("url") is None
    assert BotWireMemory(memory=sync, url=memory_url).dump_component().config["url"] == memory_url
    sync.close()
    with pytest.raises(ValueError, match="differs"):
        BotWireMemory("other", memory=sync)
    with pytest.raises(TypeError, match="needs a namespace"):
        BotWireMemory()
    with pytest.raises(ValueError, match="max_results"):
        BotWireMemory(ns, max_results=0)


def test_bad_data_fails_clearly(memory_url: str, ns: str) -> None:
    async def scenario() -> None:
        m = BotWireMemory(ns, url=memory_url)
        with pytest.raises(NotSerializable):
            await m.add(text("x", when=object()))
        await m.client.set("memories", "not a list")
        with pytest.raises(TypeError, match="holds a str, not the list of memories"):
            await m.query("x")
        await m.close()

    run(scenario)
