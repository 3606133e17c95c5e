"""``BotWireSaver`` behaviour beyond the conformance suite: identifiers that need escaping,
binary values, listing across threads and namespaces, maintenance that leaves no garbage, and a
real graph through the async path."""

from __future__ import annotations

import asyncio
import base64
import json
import operator
import zlib
from typing import Annotated, Any, TypedDict
from uuid import uuid4

import pytest
from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph

from botwire import Memory
from botwire_langgraph import BotWireSaver

WEIRD = ["a/b", "%2F", "x y", "🦜", "t/latest/", "q?#&", "..", "a:b|c:d", "back\\slash"]


def _cp(values: dict[str, Any], versions: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        v=4,
        id=str(uuid6(clock_seq=-1)),
        ts="2026-01-01T00:00:00+00:00",
        channel_values=values,
        channel_versions=versions,
        versions_seen={},
        updated_channels=None,
    )


def _cfg(thread: str, ns: str = "", cid: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if cid:
        conf["checkpoint_id"] = cid
    return {"configurable": conf}


def _put(
    saver: BotWireSaver,
    thread: str,
    ns: str = "",
    parent: Any = None,
    *,
    blob: bool = False,
    **md: Any,
) -> Any:
    """Put a checkpoint whose channel "ch" holds the step: a small int lives in the record;
    with ``blob`` it is a list, which is stored as a blob of its own."""
    cfg = parent or _cfg(thread, ns)
    value = [md.get("step", 0)] if blob else md.get("step", 0)
    cp = _cp({"ch": value}, {"ch": saver.get_next_version(None, None)})
    meta: Any = {"source": "loop", "step": 0, "parents": {}, **md}
    return saver.put(cfg, cp, meta, cp["channel_versions"])


@pytest.mark.parametrize("name", WEIRD)
def test_identifiers_that_need_escaping_round_trip(memory: Memory, name: str) -> None:
    saver = BotWireSaver(memory)
    cp = _cp({name: b"\x00\xffraw", "other": name}, {name: "1", "other": 2})
    stored = saver.put(
        _cfg(name, name),
        cp,
        {"source": "input", "step": -1, "parents": {}},
        {name: "1", "other": 2},
    )
    saver.put_writes(stored, [(name, {"k": name})], task_id=name, task_path=name)
    tup = saver.get_tuple(_cfg(name, name))
    assert tup is not None
    assert tup.config["configurable"] == {
        "thread_id": name,
        "checkpoint_ns": name,
        "checkpoint_id": cp["id"],
    }
    assert tup.checkpoint["channel_values"] == {name: b"\x00\xffraw", "other": name}
    assert tup.pending_writes == [(name, name, {"k": name})]
    # a thread whose id extends this one's is a different thread
    assert saver.get_tuple(_cfg(name + "x", name)) is None
    assert saver.get_tuple(_cfg(name, name + "x")) is None
    saver.delete_thread(name)
    assert memory.list() == []


def _unpacked(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored record or pointer with its deflated part ({"z": base64}) opened."""
    if "z" not in stored:
        return stored
    inner = json.loads(zlib.decompress(base64.b64decode(stored["z"])))
    return {**{k: v for k, v in stored.items() if k != "z"}, **inner}


def test_values_are_stored_as_json(memory: Memory) -> None:
    """Issue 22's layout: the checkpoint body and metadata are plain JSON (no base64 per field)
    deflated together, a small primitive value lives in the record, and "latest" is a pointer,
    not a second copy."""
    saver = BotWireSaver(memory)
    stored = _put(saver, "t")
    cid = stored["configurable"]["checkpoint_id"]
    record = _unpacked(memory.get(f"t/t/cp//{cid}"))
    assert set(record) == {"id", "parent", "checkpoint", "metadata", "values", "stored"}
    assert record["checkpoint"]["id"] == cid
    assert record["metadata"]["source"] == "loop"
    assert record["values"] == {"ch": [0]}
    assert record["stored"] == []  # no channel's value is a blob
    assert _unpacked(memory.get("t/t/latest/")) == {"ptr": cid, "blobs": {}, "stored": []}
    assert not [k for k in memory.list("t/t/b/")]  # the inlined value has no blob
    # a record of many channels (names and versions repeat) is stored deflated
    chans = {f"branch:to:node{i}": saver.get_next_version(None, None) for i in range(12)}
    big = _cp({"ch": "x"}, {"ch": "1", **chans})
    saver.put(_cfg("t"), big, {"source": "loop", "step": 1, "parents": {}}, {"ch": "1"})
    raw = memory.get(f"t/t/cp//{big['id']}")
    assert set(raw) == {"id", "parent", "z"}
    assert _unpacked(raw)["checkpoint"]["channel_versions"] == big["channel_versions"]
    assert set(memory.get("t/t/latest/")) == {"ptr", "z"}
    tup = saver.get_tuple(_cfg("t"))
    assert tup is not None and tup.checkpoint["channel_values"] == {"ch": "x"}
    # what JSON cannot hold exactly still goes through the serializer, as a [type, base64] pair
    cp = _cp({"raw": b"\x00\xff", "tup": (1, 2)}, {"raw": "1", "tup": "1"})
    meta: Any = {"source": "loop", "step": 0, "parents": {}, "t": (1,)}  # a tuple: not JSON
    saver.put(_cfg("u"), cp, meta, {"raw": "1"})
    record = _unpacked(memory.get(f"t/u/cp//{cp['id']}"))
    typ, data = record["metadata"]
    assert isinstance(typ, str) and isinstance(data, str)
    assert "values" not in record
    typ, data = memory.get("t/u/b//raw/s1")
    assert isinstance(typ, str) and isinstance(data, str)
    tup = saver.get_tuple(_cfg("u"))
    assert tup is not None and tup.checkpoint["channel_values"] == {"raw": b"\x00\xff"}
    assert list(tup.metadata["t"]) == [1]  # type: ignore[typeddict-item]  # as serde gives it


def test_list_across_threads_and_namespaces(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    a = _put(saver, "A")
    b = _put(saver, "B")
    child = _put(saver, "A", "child:1")
    every = [t.config["configurable"]["checkpoint_id"] for t in saver.list(None)]
    assert every == sorted(
        [c["configurable"]["checkpoint_id"] for c in (a, b, child)], reverse=True
    )
    a_all = saver.list({"configurable": {"thread_id": "A"}})
    assert {t.config["configurable"]["checkpoint_ns"] for t in a_all} == {"", "child:1"}
    assert len(list(saver.list(None, filter={"source": "loop"}, limit=2))) == 2


def test_list_is_newest_first_and_pages_with_before(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    cfg = None
    ids = []
    for step in range(7):
        cfg = _put(saver, "T", parent=cfg, step=step)
        ids.append(cfg["configurable"]["checkpoint_id"])
    assert [t.metadata["step"] for t in saver.list(_cfg("T"))] == [6, 5, 4, 3, 2, 1, 0]
    page1 = list(saver.list(_cfg("T"), limit=3))
    page2 = list(saver.list(_cfg("T"), limit=3, before=page1[-1].config))
    assert [t.metadata["step"] for t in page1 + page2] == [6, 5, 4, 3, 2, 1]
    assert [t.metadata["step"] for t in saver.list(_cfg("T"), filter={"step": 2})] == [2]
    assert list(saver.list(_cfg("T"), limit=0)) == []
    assert page1[1].parent_config["configurable"]["checkpoint_id"] == ids[4]  # type: ignore[index]


def test_pending_writes_order_and_special_channels(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    stored = _put(saver, "T")
    saver.put_writes(stored, [("b", 1), ("a", 2)], task_id="t2", task_path="~1")
    saver.put_writes(stored, [("c", 3)], task_id="t1", task_path="~0")
    saver.put_writes(stored, [("b", 99)], task_id="t2", task_path="~1")  # duplicate: ignored
    saver.put_writes(stored, [("__interrupt__", "first")], task_id="t1", task_path="~0")
    saver.put_writes(stored, [("__interrupt__", "second")], task_id="t1", task_path="~0")
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [
        ("t1", "__interrupt__", "second"),  # special channels: the latest write wins
        ("t1", "c", 3),
        ("t2", "b", 1),
        ("t2", "a", 2),
    ]


def test_prune_keeps_latest_and_only_the_blobs_it_needs(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    cfg = None
    for step in range(4):
        cfg = _put(saver, "T", parent=cfg, step=step, run_id=f"run-{step}", blob=True)
    saver.put_writes(cfg, [("x", 1)], "task")
    assert len(memory.list("t/T/b/")) == 4
    saver.prune(["T"])
    assert [t.metadata["step"] for t in saver.list(_cfg("T"))] == [3]
    tup = saver.get_tuple(_cfg("T"))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"ch": [3]}
    assert tup.pending_writes == [("task", "x", 1)]
    assert len(memory.list("t/T/b/")) == 1
    assert memory.list("r/") == ["r/run-3/T"]
    with pytest.raises(ValueError, match="keep_latest"):
        saver.prune(["T"], strategy="keep_first")
    saver.prune(["T"], strategy="delete")
    assert memory.list() == []


def test_delete_for_runs_moves_latest_back(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    first = _put(saver, "T", step=0, run_id="keep")
    _put(saver, "T", parent=first, step=1, run_id="drop")
    saver.delete_for_runs(["drop"])
    tup = saver.get_tuple(_cfg("T"))
    assert tup is not None
    assert tup.metadata["run_id"] == "keep"
    assert memory.list("r/") == ["r/keep/T"]
    saver.delete_for_runs(["keep"])
    assert saver.get_tuple(_cfg("T")) is None
    assert list(saver.list(_cfg("T"))) == []


def test_copy_thread_then_delete_source(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    cfg = _put(saver, "src", run_id="r1")
    saver.put_writes(cfg, [("x", 1)], "task")
    saver.copy_thread("src", "dst")
    saver.delete_thread("src")
    tup = saver.get_tuple(_cfg("dst"))
    assert tup is not None
    assert tup.pending_writes == [("task", "x", 1)]
    assert tup.config["configurable"]["thread_id"] == "dst"
    saver.delete_for_runs(["r1"])
    assert saver.get_tuple(_cfg("dst")) is None


def test_next_version_is_increasing_string(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    v1 = saver.get_next_version(None, None)
    v2 = saver.get_next_version(v1, None)
    assert isinstance(v1, str)
    assert v1 < v2
    assert saver.get_next_version(7, None).startswith("0" * 30 + "08.")  # type: ignore[arg-type]


def test_constructor_and_async_only_errors(memory: Memory) -> None:
    with pytest.raises(TypeError, match=r"BotWireSaver needs memory= to be a botwire\.Memory"):
        BotWireSaver("langgraph")  # type: ignore[arg-type]
    saver = BotWireSaver(memory.as_async())
    with pytest.raises(TypeError, match=r"BotWireSaver was given an AsyncMemory.*memory=Memory"):
        saver.get_tuple(_cfg("T"))
    with pytest.raises(ValueError, match="thread_id"):
        BotWireSaver(memory).get_tuple({"configurable": {}})


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: BotWireSaver) -> Any:
    builder = StateGraph(State)
    for name in ("plan", "draft", "review", "publish"):
        builder.add_node(name, lambda s, name=name: {"steps": [name]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=saver, interrupt_before=["review"])


def test_real_graph_async_path_with_interrupt(memory_url: str, namespace: str) -> None:
    thread = {"configurable": {"thread_id": str(uuid4())}}

    async def first() -> Any:
        async with BotWireSaver(Memory(namespace, url=memory_url).as_async()) as saver:
            return await _graph(saver).ainvoke({"steps": []}, thread)

    assert asyncio.run(first()) == {"steps": ["plan", "draft"]}

    async def second() -> Any:  # another saver, another client: only botwire carries state
        async with BotWireSaver(Memory(namespace, url=memory_url)) as saver:
            graph = _graph(saver)
            assert (await graph.aget_state(thread)).next == ("review",)
            out = await graph.ainvoke(None, thread)
            history = [s async for s in graph.aget_state_history(thread)]
            return out, history

    out, history = asyncio.run(second())
    assert out == {"steps": ["plan", "draft", "review", "publish"]}
    assert len(history) == 6  # input, plan, draft, (interrupt) review, publish, end
    sync_saver = BotWireSaver(Memory(namespace, url=memory_url))
    assert _graph(sync_saver).get_state(thread).values == out


def test_close_closes_only_the_clients_the_saver_made(memory: Memory) -> None:
    """A passed-in Memory stays usable after the saver closes; one the saver made is closed,
    and so is the AsyncMemory it derived for async calls."""
    saver = BotWireSaver(memory)

    async def use_async() -> None:
        async with saver:
            await saver.aget_tuple(_cfg("close-T"))
        assert saver._clients._aio is None  # the derived async client was closed

    asyncio.run(use_async())
    memory.set("still-open", 1)  # the caller's client was not closed
    assert memory.get("still-open") == 1

    own = BotWireSaver(namespace=memory.namespace, url=memory.url)
    with own:
        assert own.get_tuple(_cfg("close-T")) is None
    assert own._clients.sync._closed  # made by the saver: closed with it


def test_versions_are_short_for_new_threads_and_keep_an_old_threads_width(memory: Memory) -> None:
    """Issue 22: a new thread's versions are 21 characters (12-digit counter), not 49; a thread
    written before keeps its 32-digit counter, because LangGraph compares versions as strings."""
    saver = BotWireSaver(memory)
    v = saver.get_next_version(None, None)
    assert len(v) == 21 and v.startswith("000000000001.")
    chain = [v]
    for _ in range(12):
        chain.append(saver.get_next_version(chain[-1], None))
    assert chain == sorted(chain) and len(set(chain)) == len(chain)
    assert saver.get_next_version("9", None).startswith("000000000010.")  # never narrower
    old = "0" * 30 + "12.0.123456789"
    nxt = saver.get_next_version(old, None)
    assert nxt.startswith("0" * 30 + "13.") and old < nxt


def test_a_runs_markers_are_written_by_its_first_put_only(memory: Memory) -> None:
    saver = BotWireSaver(memory)
    first = _put(saver, "T", step=0, run_id="R")
    second = _put(saver, "T", parent=first, step=1, run_id="R")
    marker, run_key = memory.entry("r/R/T"), memory.entry("t/T/run/R")
    record = memory.entry(f"t/T/cp//{second['configurable']['checkpoint_id']}")
    assert marker is not None and run_key is not None and record is not None
    assert marker.version < record.version and run_key.version < record.version
    # maintenance in this saver deletes the markers: the run's next put writes them again
    saver.delete_for_runs(["R"])
    assert memory.list() == []
    _put(saver, "T", step=2, run_id="R")
    assert memory.list("r/") == ["r/R/T"]
    saver.delete_for_runs(["R"])
    assert memory.list() == []


def test_a_pointer_that_disagrees_with_its_record_is_not_trusted(memory: Memory) -> None:
    """get_tuple reads record, writes and the blobs the "latest" pointer names in one request;
    if the pointer names other versions than the record (written by hand, or by a future
    layout), the record's own versions win, and a pointer to a missing record reads as none."""
    saver = BotWireSaver(memory)
    stored = _put(saver, "T", step=5, blob=True)
    cid = stored["configurable"]["checkpoint_id"]
    memory.set("t/T/latest/", {"ptr": cid, "blobs": {}})
    tup = saver.get_tuple(_cfg("T"))
    assert tup is not None and tup.checkpoint["channel_values"] == {"ch": [5]}
    memory.set("t/T/latest/", {"ptr": "no-such-checkpoint", "blobs": {}})
    assert saver.get_tuple(_cfg("T")) is None
