"""A checkpoint's channels with a version but no value (every node's trigger channel once it
has run) have no blob: records and "latest" pointers name the channels whose values are blobs
(``"stored"``), and readers fetch those only, not one missing key per node. Checkpoints written
before (no ``"stored"``) still read every channel's blob, and say the same."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from botwire import Memory
from botwire_langgraph import BotWireSaver
from botwire_langgraph._checkpoint_plans import open_record
from botwire_langgraph._serde import pack

NODES = 12


class State(TypedDict):
    step: int
    notes: list[str]  # a list: a blob per version


def _graph(saver: BotWireSaver) -> Any:
    def node(i: int) -> Any:
        def run(state: State) -> dict[str, Any]:
            return {"step": state["step"] + 1, "notes": [*state["notes"], f"n{i}"]}

        return run

    g = StateGraph(State)
    for i in range(NODES):
        g.add_node(f"n{i}", node(i))  # type: ignore[call-overload]
    g.add_edge(START, "n0")
    for i in range(NODES - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{NODES - 1}", END)
    return g.compile(checkpointer=saver)


def _requested(memory: Memory) -> list[str]:
    """The keys ``memory``'s batch reads ask for (observed, then passed on unchanged)."""
    asked: list[str] = []
    get_many = memory.get_many

    def spy(keys: Any, *a: Any, **kw: Any) -> Any:
        asked.extend(keys)
        return get_many(keys, *a, **kw)

    memory.get_many = spy  # type: ignore[method-assign]
    return asked


def _blob_keys(keys: list[str]) -> list[str]:
    return [k for k in keys if "/b/" in k]


def _missing(memory: Memory, keys: list[str]) -> list[str]:
    found = memory.get_many(keys)
    return [k for k in keys if found.get(k) is None]


def _run(memory: Memory, thread: str) -> tuple[BotWireSaver, Any]:
    saver = BotWireSaver(memory, writes_linger=0)
    app = _graph(saver)
    cfg = {"configurable": {"thread_id": thread}}
    out = app.invoke({"step": 0, "notes": []}, cfg, durability="sync")
    assert out["step"] == NODES
    return saver, cfg


def test_get_tuple_reads_only_the_blobs_that_exist(memory: Memory) -> None:
    _, cfg = _run(memory, "t")
    for saver in (BotWireSaver(memory), BotWireSaver(memory, writes_linger=0)):
        asked = _requested(memory)
        got = saver.get_tuple(cfg)
        assert got is not None
        blobs = _blob_keys(asked)
        # the one blob channel ("notes"), not one per node's trigger channel
        assert blobs and all("/notes/" in k for k in blobs), blobs
        assert not _missing(memory, blobs)
        assert got.checkpoint["channel_values"]["notes"] == [f"n{i}" for i in range(NODES)]
        assert got.checkpoint["channel_values"]["step"] == NODES
        del memory.get_many  # the spy


def test_history_reads_only_the_blobs_that_exist(memory: Memory) -> None:
    saver, cfg = _run(memory, "t")
    asked = _requested(memory)
    history = list(saver.list(cfg))
    assert len(history) == NODES + 2  # the input, each node, and the start
    blobs = _blob_keys(asked)
    assert blobs and not _missing(memory, blobs)
    for tup in history:
        step = tup.metadata["step"]
        if step >= 1:
            assert tup.checkpoint["channel_values"]["notes"] == [f"n{i}" for i in range(step)]


def _unmark(memory: Memory, thread: str) -> int:
    """Rewrite the thread's records and pointer as a saver of before ``"stored"`` wrote them."""
    changed = 0
    for key in memory.list(f"t/{thread}/"):
        if "/cp/" not in key and "/latest/" not in key:
            continue
        value = open_record(memory.get(key))
        if "stored" not in value:
            continue
        del value["stored"]
        head = {k: value.pop(k) for k in ("id", "parent", "ptr") if k in value}
        memory.set(key, {**head, **pack(value)})
        changed += 1
    return changed


def test_checkpoints_written_before_read_the_same(memory: Memory) -> None:
    saver, cfg = _run(memory, "t")
    now = saver.get_tuple(cfg)
    history = [(t.checkpoint, t.metadata, t.pending_writes) for t in saver.list(cfg)]
    assert _unmark(memory, "t") == NODES + 3  # every record, and the pointer
    for reader in (BotWireSaver(memory), saver):
        asked = _requested(memory)
        old = reader.get_tuple(cfg)
        assert old is not None and now is not None
        assert old.checkpoint == now.checkpoint and old.pending_writes == now.pending_writes
        # without "stored" every channel's blob is asked for, as before
        assert len(_blob_keys(asked)) > NODES
        old_history = [(t.checkpoint, t.metadata, t.pending_writes) for t in reader.list(cfg)]
        assert old_history == history
        del memory.get_many  # the spy
    # and the thread goes on from there, written the new way
    out = _graph(saver).invoke({"step": 0, "notes": []}, cfg, durability="sync")
    assert out == {"step": NODES, "notes": [f"n{i}" for i in range(NODES)]}
    assert BotWireSaver(memory).get_tuple(cfg).checkpoint["channel_values"] == out  # type: ignore[union-attr]


def test_a_copied_thread_keeps_what_its_pointer_names(memory: Memory) -> None:
    saver, _ = _run(memory, "src")
    saver.copy_thread("src", "dst")
    asked = _requested(memory)
    got = BotWireSaver(memory).get_tuple({"configurable": {"thread_id": "dst"}})
    assert got is not None
    assert got.checkpoint["channel_values"]["notes"] == [f"n{i}" for i in range(NODES)]
    assert not _missing(memory, _blob_keys(asked))
