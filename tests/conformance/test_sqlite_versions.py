"""SQLite hands out versions from blocks reserved in ``bw_meta`` (``store._sqlite._Versions``):
they must still grow in commit order across connections and processes, and a rollback must
never leave a version in use that the counter does not cover."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from botwire import Conflict, Limits
from botwire._codec import encode
from botwire.store import Op, SQLiteStore


def _set(store: SQLiteStore, key: str, ns: str = "ns", **kw: object) -> int:
    return int(store.batch(ns, [Op("set", key, value=encode(key), **kw)])[0]["version"])


def test_versions_grow_in_commit_order_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    a, b = SQLiteStore(path), SQLiteStore(path)
    try:
        seen: list[int] = []
        for i, store in zip(range(40), itertools.cycle([a, a, b, a, b, b, b])):
            seen.append(_set(store, f"k{i % 5}"))
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
    finally:
        a.close()
        b.close()
    reopened = SQLiteStore(path)
    try:
        assert _set(reopened, "k0") > seen[-1]  # a restart skips the unused rest of a block
    finally:
        reopened.close()


def test_a_rolled_back_reservation_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    a = SQLiteStore(path)
    try:
        # The first allocation (which reserves a block) happens in a batch that then fails.
        failed = a.batch(
            "ns", [Op("set", "x", value="1"), Op("check", "y", version=99)], atomic=False
        )
        assert "error" in failed[1]
        a.batch("ns", [Op("set", "x", value="1"), Op("check", "y", version=99)], atomic=False)
        with pytest.raises(Conflict):  # atomic: the whole transaction is rolled back
            a.batch("ns", [Op("set", "z", value="1"), Op("check", "y", version=99)])
        v1 = _set(a, "x")
        b = SQLiteStore(path)
        try:
            v2 = _set(b, "y")
        finally:
            b.close()
        v3 = _set(a, "x")
        assert v1 < v2 < v3
    finally:
        a.close()


def test_an_op_rolled_back_in_a_non_atomic_batch_does_not_lend_its_version(
    tmp_path: Path,
) -> None:
    # max_keys=1: setting a second key allocates a version, then fails the quota check and is
    # rolled back to its savepoint; the next op of the batch must not write that version.
    store = SQLiteStore(tmp_path / "v.db", limits=Limits(max_keys=1))
    try:
        first = _set(store, "a")
        results = store.batch(
            "ns", [Op("set", "b", value="1"), Op("set", "a", value="2")], atomic=False
        )
        assert results[0]["error"]["code"] == "quota_exceeded"
        batch_version = int(results[1]["version"])
        assert batch_version > first
        after = _set(store, "a")
        assert after > batch_version
        entry = store.get("ns", "a")
        assert entry is not None and entry.version == after
    finally:
        store.close()
