"""Writes ``old_layout.json``: every key of a namespace as ``BotWireSaver`` laid it out before
issue 22 (a full record under "latest", base64 bodies, a key per checkpoint and run, a list item
per pending write), plus what the old saver read back. Run it with the OLD package first on the
path (the fixture is pinned; this script documents how it was made)::

    git archive 2f99966 packages/botwire-langgraph/src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/packages/botwire-langgraph/src:tests/adapters/langgraph \\
        uv run python tests/adapters/langgraph/data/make_old_layout.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import _upgrade_graph as G
from langgraph.checkpoint.base.id import uuid6

import botwire_langgraph
from botwire import Memory
from botwire_langgraph import BotWireSaver

OUT = Path(__file__).with_name("old_layout.json")


def _is_list(key: str) -> bool:
    return key.split("/")[2] in ("idx", "w")


def main() -> None:
    assert "/tmp/" in botwire_langgraph.__file__, "run it with the old package (see docstring)"
    with tempfile.TemporaryDirectory() as tmp, Memory("old", url=f"sqlite:///{tmp}/m.db") as m:
        saver = BotWireSaver(m)
        app = G.build(saver)
        app.invoke({"log": ["start"]}, G.config("T1", 1))
        app.invoke({"log": ["again"]}, G.config("T1", 2))
        app.invoke({"log": ["weird"]}, G.config("x/y %", 3))
        # a checkpoint namespace of its own in T1, with a blob and an inline-sized value
        child = {"configurable": {"thread_id": "T1", "checkpoint_ns": "child:1"}}
        cp: Any = {
            "v": 4,
            "id": str(uuid6(clock_seq=-1)),
            "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {"items": ["c1", "c2"], "flag": True},
            "channel_versions": {"items": "1", "flag": "1"},
            "versions_seen": {},
            "updated_channels": None,
        }
        saver.put(
            child,
            cp,
            {"source": "loop", "step": 0, "parents": {}, "run_id": G.run_id(4)},
            cp["channel_versions"],
        )
        # pending writes on the latest checkpoint of "x/y %": a task's result and an error
        latest = saver.get_tuple({"configurable": {"thread_id": "x/y %"}})
        assert latest is not None
        saver.put_writes(latest.config, [("log", ["pending"]), ("note", "half")], "task-1", "p")
        saver.put_writes(latest.config, [("__error__", "boom")], "task-2", "p")
        expect: dict[str, Any] = {}
        for thread, ns in (("T1", ""), ("T1", "child:1"), ("x/y %", "")):
            conf = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
            tuples = list(saver.list(conf))
            expect[f"{thread}|{ns}"] = {
                "ids": [t.config["configurable"]["checkpoint_id"] for t in tuples],
                "runs": [t.metadata.get("run_id") for t in tuples],
                "values": tuples[0].checkpoint["channel_values"],
                "writes": [list(w) for w in tuples[0].pending_writes or []],
            }
        keys = m.list()
        data = {
            "made_by": "botwire-langgraph at 2f99966 (before issue 22), data/make_old_layout.py",
            "values": {k: m.get(k) for k in keys if not _is_list(k)},
            "lists": {k: m.get(k) for k in keys if _is_list(k)},
            "expect": expect,
        }
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(keys)} keys)", file=sys.stderr)


if __name__ == "__main__":
    main()
