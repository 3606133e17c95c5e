"""Upgrades (issue 22): a saver of the new layout reads every thread written by the old one
(before issue 22: a full record copy under "latest", base64 bodies, a key per checkpoint and run,
a list item per pending write) and keeps writing correctly into it. The old data is a pinned
fixture (``data/old_layout.json``, made by ``data/make_old_layout.py`` with the old package),
loaded key by key through ``Memory`` as the old saver had stored it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from adapters.langgraph import _upgrade_graph as G

from botwire import Memory
from botwire_langgraph import BotWireSaver

OLD = json.loads((Path(__file__).parent / "data" / "old_layout.json").read_text())
EXPECT: dict[str, Any] = OLD["expect"]


@pytest.fixture
def old(memory: Memory) -> Memory:
    """``memory`` holding the old layout's keys exactly as the old saver wrote them."""
    for key, value in OLD["values"].items():
        memory.set(key, value)
    for key, items in OLD["lists"].items():
        memory.append(key, *items)
    assert memory.get("t/T1/latest/")["checkpoint"][0] == "msgpack"  # really the old layout
    return memory


def _conf(thread: str, ns: str = "", cid: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if cid:
        conf["checkpoint_id"] = cid
    return {"configurable": conf}


def _ids(saver: BotWireSaver, thread: str, ns: str = "") -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in saver.list(_conf(thread, ns))]


def test_reads_every_old_thread(old: Memory) -> None:
    saver = BotWireSaver(old)
    for where, want in EXPECT.items():
        thread, ns = where.split("|")
        assert _ids(saver, thread, ns) == want["ids"], where
        tuples = list(saver.list(_conf(thread, ns)))
        assert [t.metadata.get("run_id") for t in tuples] == want["runs"], where
        latest = saver.get_tuple(_conf(thread, ns))
        assert latest is not None
        assert latest.config["configurable"]["checkpoint_id"] == want["ids"][0]
        assert latest.checkpoint["channel_values"] == want["values"], where
        assert [list(w) for w in latest.pending_writes or []] == want["writes"], where
        if len(want["ids"]) > 1:  # an older one, by id, with its parent
            older = saver.get_tuple(_conf(thread, ns, want["ids"][1]))
            assert older is not None and older.parent_config is not None
            assert older.parent_config["configurable"]["checkpoint_id"] == want["ids"][2]
    every = sorted(i for want in EXPECT.values() for i in want["ids"])
    assert [t.config["configurable"]["checkpoint_id"] for t in saver.list(None)] == every[::-1]

    async def read_async() -> Any:
        return await saver.aget_tuple(_conf("x/y %"))

    tup = asyncio.run(read_async())
    assert tup is not None and tup.checkpoint["channel_values"] == EXPECT["x/y %|"]["values"]


def test_a_graph_carries_on_an_old_thread_then_maintenance_cleans_up(old: Memory) -> None:
    saver = BotWireSaver(old)
    app = G.build(saver)
    before = EXPECT["T1|"]
    out = app.invoke({"log": ["new"]}, G.config("T1", 5))
    assert out == {
        "log": [*before["values"]["log"], "new", "a3", "b3"],
        "note": "note 3",
        "count": 3,
    }
    ids = _ids(saver, "T1")
    assert ids[len(ids) - len(before["ids"]) :] == before["ids"]  # old history kept, in order
    new_ids = ids[: len(ids) - len(before["ids"])]
    assert len(new_ids) == 4
    assert old.get("t/T1/latest/")["ptr"] == ids[0]  # a pointer now, not a record copy
    assert app.get_state(G.config("T1", 5)).values == out
    # an old checkpoint by id still reads after new ones were written around it
    mid = saver.get_tuple(_conf("T1", "", before["ids"][0]))
    assert mid is not None and mid.checkpoint["channel_values"] == before["values"]

    # delete_for_runs: an old run (per-checkpoint run keys), then the new run (a key per run)
    saver.delete_for_runs([G.run_id(1)])
    assert _ids(saver, "T1") == new_ids + before["ids"][:4]
    assert not old.list(f"r/{G.run_id(1)}/") and not old.list(f"t/T1/run/{G.run_id(1)}")
    saver.delete_for_runs([G.run_id(5)])
    assert _ids(saver, "T1") == before["ids"][:4]
    assert not old.list(f"r/{G.run_id(5)}/") and not old.list(f"t/T1/run/{G.run_id(5)}")
    latest = saver.get_tuple(_conf("T1"))
    assert latest is not None and latest.checkpoint["channel_values"] == before["values"]
    assert "ptr" in old.get("t/T1/latest/")  # moved back: a pointer now

    # write again, then prune: one checkpoint per namespace, its blobs, no stale run keys
    out = app.invoke({"log": ["more"]}, G.config("T1", 6))
    saver.prune(["T1"])
    assert (
        len(_ids(saver, "T1")) == 1 and _ids(saver, "T1", "child:1") == EXPECT["T1|child:1"]["ids"]
    )
    assert saver.get_tuple(_conf("T1")).checkpoint["channel_values"] == out  # type: ignore[union-attr]
    assert sorted(k.split("/")[1] for k in old.list("r/") if k.endswith("/T1")) == sorted(
        [G.run_id(4), G.run_id(6)]
    )
    child = saver.get_tuple(_conf("T1", "child:1"))
    assert child is not None and child.checkpoint["channel_values"] == {
        "flag": True,
        "items": ["c1", "c2"],
    }

    saver.delete_thread("T1")
    saver.delete_thread("x/y %")
    assert old.list() == []  # no garbage from either layout


def test_new_pending_writes_join_an_old_list_and_copy_keeps_runs(old: Memory) -> None:
    saver = BotWireSaver(old)
    latest = saver.get_tuple(_conf("x/y %"))
    assert latest is not None
    saver.put_writes(latest.config, [("note", "new half"), ("log", ["x"])], "task-0", "p")
    saver.put_writes(
        latest.config, [("note", "ignored: task-1 idx 0 was stored first")], "task-1", "p"
    )
    tup = saver.get_tuple(_conf("x/y %"))
    assert tup is not None
    assert [list(w) for w in tup.pending_writes or []] == [
        ["task-0", "note", "new half"],
        ["task-0", "log", ["x"]],
        *EXPECT["x/y %|"]["writes"],
    ]
    saver.copy_thread("x/y %", "copy")
    assert _ids(saver, "copy") == EXPECT["x/y %|"]["ids"]
    copied = saver.get_tuple(_conf("copy"))
    assert copied is not None and copied.pending_writes == tup.pending_writes
    saver.delete_for_runs([G.run_id(3)])  # the old run: gone from the source and the copy
    assert _ids(saver, "x/y %") == [] and _ids(saver, "copy") == []
    assert saver.get_tuple(_conf("copy")) is None
