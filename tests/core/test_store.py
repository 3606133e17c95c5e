"""The embedded store's own contract: idempotency, non-atomic batches, purging, durability."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.backends import FakeClock

from botwire import InvalidArgument, Limits
from botwire._types import Op
from botwire.store import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "s.db", clock=FakeClock())


def test_idempotency_key_applies_once_and_replays(store: SQLiteStore) -> None:
    ops = [Op("append", "h", items=('"a"',)), Op("incr", "n", by=1)]
    first = store.batch("ns", ops, idempotency_key="k1")
    again = store.batch("ns", ops, idempotency_key="k1")
    assert (
        first
        == again
        == [
            {"version": first[0]["version"], "length": 1},
            {"version": first[1]["version"], "value": 1},
        ]
    )
    assert store.get("ns", "h").value == ["a"]  # type: ignore[union-attr]
    other = store.batch("ns", ops, idempotency_key="k2")
    assert other[0]["length"] == 2 and other[1]["value"] == 2
    with pytest.raises(InvalidArgument, match="already used"):
        store.batch("ns", [Op("incr", "n", by=5)], idempotency_key="k1")
    assert store.batch("other-ns", ops, idempotency_key="k1")[0]["length"] == 1  # per namespace


def test_idempotency_records_are_forgotten_after_a_day(store: SQLiteStore) -> None:
    op = [Op("incr", "n", by=1)]
    store.batch("ns", op, idempotency_key="k")
    store.clock.advance(86400 + 1)  # type: ignore[attr-defined]
    store.purge_expired()
    assert store.batch("ns", op, idempotency_key="k")[0]["value"] == 2


def test_idempotency_records_count_in_usage_until_forgotten(
    store: SQLiteStore, tmp_path: Path
) -> None:
    op = [Op("incr", "n", by=1)]
    answer = store.batch("ns", op, idempotency_key="k")
    plain = SQLiteStore(tmp_path / "plain.db", clock=FakeClock())
    plain.batch("ns", op)  # the same data without a record
    record = len(f'[{{"version":{answer[0]["version"]},"value":1}}]')
    assert store.usage("ns").bytes == plain.usage("ns").bytes + record  # issue 13
    store.clock.advance(86400 + 1)  # type: ignore[attr-defined]
    store.purge_expired()  # the record is forgotten: its bytes are freed
    assert store.usage("ns").bytes == plain.usage("ns").bytes


def test_non_atomic_batch_reports_errors_per_op(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db", limits=Limits(max_value_bytes=10))
    results = store.batch(
        "ns",
        [
            Op("set", "a", value="1"),
            Op("set", "big", value='"' + "x" * 20 + '"'),
            Op("incr", "a", by=2),
            Op("check", "zz", version=3),
        ],
        atomic=False,
    )
    assert results[0]["version"] > 0
    assert results[1]["error"]["code"] == "value_too_large"
    assert results[1]["error"]["key"] == "big"
    assert results[2]["value"] == 3
    assert results[3]["error"]["code"] == "conflict"
    assert store.get("ns", "big") is None
    assert store.usage("ns").writes_today == 2  # the refused write was rolled back, quota too


def test_purge_removes_expired_rows_and_fixes_usage(store: SQLiteStore) -> None:
    store.batch(
        "ns",
        [
            Op("set", "a", value="1", ttl=5),
            Op("append", "l", items=("1", "2"), ttl=5),
            Op("set", "keep", value="1"),
        ],
    )
    store.clock.advance(10)  # type: ignore[attr-defined]
    assert store.purge_expired() == 2
    assert store.usage("ns").keys == 1
    assert store._conn.execute("SELECT count(*) FROM bw_items").fetchone()[0] == 0
    assert store.integrity_check() == "ok"


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    a = SQLiteStore(path)
    v = a.batch("ns", [Op("set", "k", value='{"x":1}')])[0]["version"]
    a.close()
    b = SQLiteStore(path, synchronous="FULL")
    assert b.get("ns", "k").value == {"x": 1}  # type: ignore[union-attr]
    assert b.batch("ns", [Op("set", "k2", value="2")])[0]["version"] > v  # versions continue
    with pytest.raises(InvalidArgument):
        SQLiteStore(path, synchronous="sometimes")


def test_a_write_lock_held_elsewhere_is_named_with_its_cause_and_fix(tmp_path: Path) -> None:
    """Another process holding the file's write lock past the busy timeout (a second server on
    the file, a long import): the write fails naming its namespace and key, what holds such a
    lock and what to do, not only sqlite3's "database is locked"; nothing is written."""
    import sqlite3

    from botwire import Unavailable

    store = SQLiteStore(tmp_path / "busy.db", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the other process's long write transaction
        with pytest.raises(Unavailable) as caught:
            store.batch("tenant-1", [Op("set", "profile", value='"x"')])
        error = caught.value
        assert (error.namespace, error.key) == ("tenant-1", "profile")
        message = str(error)
        assert "another process" in message and "one server per SQLite file" in message
        assert "database is locked" in message
        other.execute("ROLLBACK")
        assert store.get("tenant-1", "profile") is None
    finally:
        other.close()
        store.close()
