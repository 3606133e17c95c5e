"""Group commit in the embedded store (``SQLiteStore.batch_group``, issue 22): several callers'
batches in one transaction, each in its own savepoint. One caller's failure never undoes
another's; versions, quotas and idempotency records behave as if the batches ran one after the
other; a write that would drop a list's rows in a ``light`` group comes back as ``HeavyWrite``
with nothing changed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from botwire import Conflict, InvalidArgument, Limits, QuotaExceeded, TypeMismatch
from botwire.store import Op, SQLiteStore
from botwire.store._sqlitegroup import HeavyWrite


def _set(key: str, value: Any, **kw: Any) -> Op:
    return Op("set", key, value=json.dumps(value), **kw)


def _value(store: SQLiteStore, ns: str, key: str) -> Any:
    entry = store.get(ns, key)
    return None if entry is None else entry.value


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "g.db", limits=Limits(max_keys=3))
    try:
        yield s
    finally:
        s.close()


def test_one_callers_error_undoes_only_its_own_changes(store: SQLiteStore) -> None:
    store.batch("a", [Op("append", "list", items=("1",))])
    out = store.batch_group(
        [
            ("a", [_set("x", 1)], True, None),
            # atomic: its first op is undone with the failing second (the key is a list)
            ("b", [_set("y", 2), Op("incr", "z"), _set("w", 3, if_version=999)], True, None),
            ("a", [Op("incr", "list")], True, None),  # a list: TypeMismatch
            ("c", [_set("v", 4)], True, None),
        ]
    )
    assert isinstance(out[1], Conflict) and isinstance(out[2], TypeMismatch)
    assert not isinstance(out[0], Exception) and not isinstance(out[3], Exception)
    assert _value(store, "a", "x") == 1 and _value(store, "c", "v") == 4
    assert _value(store, "b", "y") is None and _value(store, "b", "z") is None
    assert store.usage("b").keys == 0  # nor did its statistics survive
    assert _value(store, "a", "list") == [1]


def test_versions_follow_the_order_and_survive_a_rolled_back_reservation(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """The first caller reserves the version block and fails: its savepoint's rollback undoes
    the reservation, so later callers must not reuse versions another process could take."""
    out = store.batch_group(
        [
            ("n", [_set("k1", 1), _set("k2", 2, if_version=5)], True, None),  # fails after k1
            ("n", [_set("k3", 3)], True, None),
            ("n", [_set("k4", 4)], True, None),
        ]
    )
    assert isinstance(out[0], Conflict)
    v3, v4 = out[1][0]["version"], out[2][0]["version"]
    assert v3 < v4
    other = SQLiteStore(tmp_path / "g.db")  # another process's connection to the file
    try:
        v5 = other.batch("n2", [_set("k5", 5)])[0]["version"]
    finally:
        other.close()
    v6 = store.batch("n3", [_set("k6", 6)])[0]["version"]  # back on the first connection
    assert v4 < v5 < v6, (v3, v4, v5, v6)
    conn = sqlite3.connect(tmp_path / "g.db")
    try:
        top = conn.execute("SELECT version FROM bw_meta").fetchone()[0]
        versions = [r[0] for r in conn.execute("SELECT version FROM bw_entries")]
    finally:
        conn.close()
    assert len(set(versions)) == len(versions) and max(versions) <= top


def test_quota_and_idempotency_see_the_callers_before(store: SQLiteStore) -> None:
    out = store.batch_group(
        [
            ("q", [_set("a", 1)], True, "req-1"),
            ("q", [_set("a", 1)], True, "req-1"),  # the same request again: replayed
            ("q", [_set("a", 2)], True, "req-1"),  # the key reused for another request
            ("q", [_set("b", 1), _set("c", 1)], True, None),  # 3 keys: the quota is full
            ("q", [_set("d", 1)], True, None),
        ]
    )
    assert out[1] == out[0]
    assert isinstance(out[2], InvalidArgument) and "req-1" in str(out[2])
    assert isinstance(out[4], QuotaExceeded)
    assert store.usage("q").keys == 3 and _value(store, "q", "a") == 1


def test_a_failure_below_the_requests_reruns_each_alone(store: SQLiteStore) -> None:
    """An error that is not botwire's (here a value that is not JSON text, a caller's bug) rolls
    the group back and runs every batch in its own transaction: only the bad one fails."""
    bad = Op("set", "bad", value=object())  # type: ignore[arg-type]
    out = store.batch_group(
        [
            ("r", [_set("a", 1)], True, None),
            ("r", [bad], True, None),
            ("r", [_set("b", 2)], True, None),
        ]
    )
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)
    assert isinstance(out[1], Exception)
    assert _value(store, "r", "a") == 1 and _value(store, "r", "b") == 2
    assert out[0][0]["version"] < out[2][0]["version"]


def test_light_groups_send_list_drops_back_untouched(store: SQLiteStore) -> None:
    store.batch("l", [Op("append", "list", items=("1", "2"))])
    for calls in (
        [("l", [Op("delete", "list")], True, None)],  # alone (through batch(light=True))
        [("l", [_set("x", 1)], True, None), ("l", [_set("list", 0)], True, None)],
    ):
        out = store.batch_group(calls, light=True)
        assert isinstance(out[-1], HeavyWrite)
        assert _value(store, "l", "list") == [1, 2]
    assert _value(store, "l", "x") == 1
    # not light (a worker thread's group): the same write goes through
    assert not isinstance(
        store.batch_group([("l", [Op("delete", "list")], True, None)])[0], Exception
    )
    assert _value(store, "l", "list") is None


class _Threads(SQLiteStore):
    """Records the thread of each ``batch`` and ``batch_group`` call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: dict[str, int] = {}

    def batch(self, namespace: str, ops: Any, **options: Any) -> list[dict[str, Any]]:
        self.threads["batch"] = threading.get_ident()
        return super().batch(namespace, ops, **options)

    def batch_group(self, calls: Any, **options: Any) -> list[Any]:
        self.threads["batch_group"] = threading.get_ident()
        return super().batch_group(calls, **options)


def test_inline_runner_keeps_plain_sets_on_the_loop_and_list_drops_off_it(tmp_path: Path) -> None:
    """Before group commit every SET hopped to a worker thread (a set *may* drop a list's rows);
    now only one that does leaves the loop, and it still does its work."""
    from botwire_server.storage import StoreRunner

    store = _Threads(tmp_path / "t.db")

    async def main() -> None:
        loop_thread = threading.get_ident()
        runner = StoreRunner(store, inline=True)
        await runner.batch("ns", [Op("append", "l", items=("1", "2"))])
        await asyncio.gather(*(runner.batch("ns", [_set(f"k{i}", i)]) for i in range(5)))
        assert set(store.threads.values()) == {loop_thread}  # all on the loop
        assert runner.groups is not None and runner.groups.writes == 6
        await runner.batch("ns", [_set("l", "plain now")])  # over the list: a thread
        assert store.threads["batch"] != loop_thread
        await runner.close()

    asyncio.run(main())
    reopened = SQLiteStore(tmp_path / "t.db")
    try:
        assert _value(reopened, "ns", "l") == "plain now" and _value(reopened, "ns", "k4") == 4
    finally:
        reopened.close()
