"""A batch's response budget on SQLite (``Engine.stored_bytes``): each key is a look-up of its
own (``plan_stored_bytes``, one compound statement per 100 keys), counted as often as it is
named; missing and expired keys count nothing."""

from __future__ import annotations

import time
from pathlib import Path

from botwire import Memory
from botwire.store import SQLiteStore
from botwire.store._sqlread import STORED_BYTES_CHUNK


def test_stored_bytes_sum_the_keys_over_several_statements(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    mem = Memory("ns", store=store)
    mem.set("v", {"a": "x" * 100})
    mem.append("l", "x", "y")
    mem.set("gone", 1, ttl=0.01)
    many = [f"k{i}" for i in range(5 * STORED_BYTES_CHUNK + 1)]
    with mem.atomic() as tx:
        for i, key in enumerate(many):
            tx.set(key, i)
    time.sleep(0.05)
    one = {key: store.stored_bytes("ns", [key]) for key in [*many, "v", "l", "gone", "none"]}
    assert one["gone"] == one["none"] == 0 and min(one[k] for k in many) > 0
    assert store.stored_bytes("ns", ["v", "v", "l"]) == 2 * one["v"] + one["l"]
    assert store.stored_bytes("ns", [*many, "v", "gone"]) == sum(one[k] for k in many) + one["v"]
