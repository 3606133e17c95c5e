"""Every operation's semantics through ``PostgresStore`` on a real PostgreSQL server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support.backends import FakeClock

from botwire import (
    Conflict,
    InvalidArgument,
    Limits,
    Memory,
    QuotaExceeded,
    TypeMismatch,
    ValueTooLarge,
)
from botwire.store import Op, SQLiteStore
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

DAY = 86400.0
MakeStore = Callable[..., PostgresStore]


def j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- values and versions ---------------------------------------------------------------------

VALUES = [
    {"a": 1, "b": [1, 2, {"c": None}]},
    [1, "2", None, True, 1.5],
    "text with ' quotes \" and \\ and %s and ? and $1",
    "é😀\u2028",
    "",
    0,
    -7,
    2**62,
    2**80,
    1.5,
    1e300,
    -0.25,
    True,
    False,
    None,
    {},
    [],
    {"nested": {"deep": [[[]]]}, "unicode": "日本語"},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_get_returns_exactly_the_type_that_was_set(mem: Memory, value: Any) -> None:
    mem.set("k", value)
    got = mem.get("k", default="<absent>")
    assert got == value
    assert type(got) is type(value)
    assert mem.get_many(["k"]) == {"k": value}


def test_absent_key(mem: Memory) -> None:
    assert mem.get("nope", default=42) == 42
    assert mem.entry("nope") is None
    assert "nope" not in mem
    assert mem.delete("nope") is False


def test_versions_grow_across_the_store_and_are_never_reused(store: PostgresStore, ns: str) -> None:
    a, b = Memory(ns, store=store), Memory(ns + "-other", store=store)
    versions = [a.set("k", 1), b.set("k", 1), a.set("k", 2)]
    a.append("l", 1)
    b.incr("n")
    versions += [a.entry("l").version, b.entry("n").version]  # type: ignore[union-attr]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    first = a.entry("k")
    assert first is not None
    assert first.version == versions[2]
    assert a.delete("k") is True
    again = a.set("k", 2)
    assert again > max(versions)
    with pytest.raises(Conflict) as err:  # the old version no longer matches (no ABA)
        a.set("k", 3, if_version=first.version)
    assert err.value.current_version == again


def test_entry_times(mem: Memory, clock: FakeClock) -> None:
    mem.set("k", 1)
    e1 = mem.entry("k")
    clock.advance(5)
    mem.set("k", 2, ttl=10)
    e2 = mem.entry("k")
    assert e1 is not None
    assert e2 is not None
    assert e2.created_at == e1.created_at
    assert e2.updated_at == pytest.approx(e1.updated_at + 5, abs=0.5)
    assert e2.expires_at == pytest.approx(e2.updated_at + 10)


def test_compare_and_set(mem: Memory) -> None:
    v1 = mem.set("k", "a", if_absent=True)
    with pytest.raises(Conflict) as err:
        mem.set("k", "b", if_absent=True)
    assert err.value.current_version == v1
    with pytest.raises(Conflict) as err:
        mem.set("k", "b", if_version=v1 + 1000)
    assert err.value.current_version == v1
    v2 = mem.set("k", "b", if_version=v1)
    assert v2 > v1
    assert mem.get("k") == "b"
    with pytest.raises(Conflict):
        mem.delete("k", if_version=v1)
    assert mem.delete("k", if_version=v2) is True
    with pytest.raises(Conflict) as err:
        mem.set("k", "c", if_version=v2)
    assert err.value.current_version is None


def test_update_retries_on_conflict(mem: Memory) -> None:
    mem.set("doc", {"n": 0})
    assert mem.update("doc", lambda d: {**d, "n": d["n"] + 1}) == {"n": 1}


# -- lists and counters ----------------------------------------------------------------------


def test_lists(mem: Memory) -> None:
    assert mem.append("chat", {"m": 1}) == 1
    assert mem.append("chat", {"m": 2}, {"m": 3}) == 3
    assert mem.get("chat") == [{"m": 1}, {"m": 2}, {"m": 3}]
    assert mem.tail("chat", 2) == [{"m": 2}, {"m": 3}]
    assert mem.tail("chat", 0) == []
    assert mem.tail("chat", 10) == [{"m": 1}, {"m": 2}, {"m": 3}]
    assert mem.pop("chat") == {"m": 3}
    assert mem.get("chat") == [{"m": 1}, {"m": 2}]
    assert mem.append("chat", 4, 5, 6, max_len=3) == 3
    assert mem.get("chat") == [4, 5, 6]
    assert mem.append("chat", 7, max_len=2) == 2
    assert mem.get("chat") == [6, 7]
    assert mem.pop("chat") == 7
    assert mem.pop("chat") == 6
    assert mem.pop("chat", default="empty") == "empty"
    assert mem.get("chat") == []
    assert mem.append("chat", "again") == 1
    assert mem.get("chat") == ["again"]
    assert mem.tail("absent", 3) == []
    assert mem.pop("absent", default=None) is None


def test_set_array_then_append_and_pop(mem: Memory) -> None:
    mem.set("l", [1, [2], {"three": 3}])
    assert mem.append("l", "four") == 4
    assert mem.get("l") == [1, [2], {"three": 3}, "four"]
    assert mem.tail("l", 2) == [{"three": 3}, "four"]
    mem.set("l", ["replaced"])  # set over a list replaces it whole
    assert mem.get("l") == ["replaced"]
    assert mem.append("l", 2, max_len=1) == 1
    assert mem.get("l") == [2]
    mem.set("plain", [1, 2, 3])
    assert mem.tail("plain", 2) == [2, 3]
    assert mem.pop("plain") == 3
    assert mem.get("plain") == [1, 2]


def test_list_sizes_match_a_json_value(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    m.append("l", "a", {"b": 1})
    m.set("v", ["a", {"b": 1}])
    sizes = {k.key: k.bytes for k in store.list_keys(ns).keys}
    assert sizes["l"] == sizes["v"] == len(b"l") + len(j(["a", {"b": 1}]).encode())
    usage = store.usage(ns)
    assert usage.keys == 2
    assert usage.bytes == sizes["l"] + sizes["v"]


def test_type_mismatches(mem: Memory) -> None:
    mem.set("s", "text")
    mem.append("l", 1)
    with pytest.raises(TypeMismatch):
        mem.append("s", 1)
    with pytest.raises(TypeMismatch):
        mem.pop("s")
    with pytest.raises(TypeMismatch):
        mem.tail("s", 1)
    with pytest.raises(TypeMismatch):
        mem.incr("s")
    with pytest.raises(TypeMismatch):
        mem.incr("l")
    mem.set("b", True)
    with pytest.raises(TypeMismatch):
        mem.incr("b")
    assert mem.get("s") == "text"
    assert mem.get("l") == [1]


def test_incr(mem: Memory) -> None:
    assert mem.incr("n") == 1
    assert mem.incr("n", 41) == 42
    assert mem.incr("n", -2) == 40
    assert mem.incr("f", 0.5) == 0.5
    assert mem.incr("f", 2) == 2.5
    assert type(mem.get("n")) is int
    assert type(mem.get("f")) is float
    mem.set("big", 2**70)
    assert mem.incr("big") == 2**70 + 1


# -- TTL ---------------------------------------------------------------------------------------


def test_ttl_with_injected_clock(store: PostgresStore, ns: str, clock: FakeClock) -> None:
    m = Memory(ns, store=store)
    m.set("short", 1, ttl=10)
    m.set("forever", 2)
    m.append("chat", "a", ttl=10)
    clock.advance(5)
    m.append("chat", "b", ttl=10)  # append with ttl refreshes the expiry
    assert m.get("short") == 1
    clock.advance(6)
    assert m.get("short") is None
    assert "short" not in m
    assert m.get("chat") == ["a", "b"]
    assert m.list() == ["chat", "forever"]
    assert m.get_many(["short", "forever"]) == {"forever": 2}
    clock.advance(10)
    assert m.get("chat") is None
    assert m.tail("chat", 1) == []
    assert m.list() == ["forever"]
    usage = m.usage()  # usage purges the namespace's expired entries
    assert usage.keys == 1
    assert usage.bytes == len("forever") + 1
    m.set("short", "new")  # an expired key is absent for if_absent
    m.set("x", 1, ttl=5)
    m.set("x", 2)  # a write without ttl clears the expiry
    clock.advance(100)
    assert m.get("x") == 2
    assert m.get("short") == "new"


def test_purge_expired(store: PostgresStore, ns: str, clock: FakeClock) -> None:
    m = Memory(ns, store=store)
    m.set("a", 1, ttl=1)
    m.append("l", 1, 2, 3, ttl=1)
    m.set("keep", 1)
    clock.advance(2)
    assert store.purge_expired() >= 2
    page = store.list_keys(ns)
    assert [k.key for k in page.keys] == ["keep"]
    assert store.usage(ns).keys == 1


def test_invalid_ttl_and_arguments(mem: Memory, store: PostgresStore, ns: str) -> None:
    with pytest.raises(InvalidArgument):
        store.batch(ns, [Op("set", "k", value="1", ttl=-1)])
    with pytest.raises(InvalidArgument):
        store.batch(ns, [Op("append", "k", items=("1",), max_len=0)])
    with pytest.raises(InvalidArgument):
        store.get(ns, "k", tail=-1)
    with pytest.raises(InvalidArgument):
        store.list_keys(ns, limit=0)
    with pytest.raises(InvalidArgument):
        store.batch(ns, [Op("get", "k", tail=-1)])
    assert mem.get("k") is None


# -- limits and quotas -------------------------------------------------------------------------


def test_writes_per_day_exact_at_the_boundary(make_store: MakeStore, ns: str) -> None:
    clock = FakeClock()
    clock.offset = (clock() // DAY + 1) * DAY - clock() + 100  # start just after a midnight
    store = make_store(limits=Limits(writes_per_day=5), clock=clock)
    m = Memory(ns, store=store)
    for i in range(5):
        m.set(f"k{i}", i)
    with pytest.raises(QuotaExceeded) as err:
        m.set("k5", 5)
    assert err.value.details["quota"] == "writes_per_day"
    assert 0 < err.value.retry_after <= DAY
    with pytest.raises(QuotaExceeded):
        m.append("l", 1)
    assert m.get("k4") == 4  # reads are unlimited
    assert m.delete("k0") is True  # deletes are never refused
    assert m.usage().writes_today == 5
    clock.advance(DAY)  # next UTC day
    m.set("k5", 5)
    assert m.usage().writes_today == 1


def test_a_refused_write_does_not_count(make_store: MakeStore, ns: str) -> None:
    store = make_store(limits=Limits(writes_per_day=3))
    m = Memory(ns, store=store)
    v = m.set("k", 1)
    with pytest.raises(Conflict):
        m.set("k", 2, if_version=v + 1)
    m.set("k", 3)
    m.set("k", 4)
    with pytest.raises(QuotaExceeded):
        m.set("k", 5)


def test_value_and_namespace_bytes(make_store: MakeStore, ns: str) -> None:
    store = make_store(limits=Limits(max_value_bytes=10, max_namespace_bytes=40))
    m = Memory(ns, store=store)
    m.set("a", "x" * 8)  # '"xxxxxxxx"' is exactly 10 bytes
    with pytest.raises(ValueTooLarge):
        m.set("b", "x" * 9)
    with pytest.raises(ValueTooLarge):
        m.append("l", "x" * 9)
    m.set("b", "x" * 8)  # 2 x 11 bytes
    m.set("c", "x" * 6)  # + 9 = 31
    with pytest.raises(QuotaExceeded) as err:
        m.set("d", "x" * 8)  # + 11 = 42 > 40
    assert err.value.details["quota"] == "max_namespace_bytes"
    m.set("d", "x" * 6)  # + 9 = 40: exactly at the limit
    assert m.usage().bytes == 40
    m.set("a", "")  # shrinking is always fine
    assert m.usage().bytes == 40 - 10 + 2


def test_max_keys(make_store: MakeStore, ns: str, clock: FakeClock) -> None:
    store = make_store(limits=Limits(max_keys=2), clock=clock)
    m = Memory(ns, store=store)
    m.set("a", 1)
    m.set("b", 1, ttl=5)
    with pytest.raises(QuotaExceeded) as err:
        m.set("c", 1)
    assert err.value.details["quota"] == "max_keys"
    m.set("a", 2)  # overwriting an existing key is fine when full
    clock.advance(10)
    m.set("c", 1)  # expired keys free their slot
    assert sorted(m.list()) == ["a", "c"]


# -- batches and idempotency -------------------------------------------------------------------


def test_atomic_batch_is_all_or_nothing(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    v = m.set("a", 1)
    with pytest.raises(Conflict):
        store.batch(ns, [Op("set", "b", value="2"), Op("check", "a", version=v + 1)])
    assert m.get("b") is None
    with pytest.raises(TypeMismatch):
        store.batch(ns, [Op("set", "c", value="1"), Op("append", "a", items=("1",))])
    assert m.get("c") is None
    assert store.usage(ns).keys == 1
    results = store.batch(
        ns,
        [
            Op("check", "a", version=v),
            Op("check", "zz", version=None),
            Op("set", "b", value="2"),
            Op("incr", "n", by=2),
            Op("append", "l", items=("1", "2")),
            Op("get", "b"),
        ],
    )
    assert results[0] == {"ok": True}
    assert results[1] == {"ok": True}
    assert results[2]["version"] == results[3]["version"] == results[4]["version"]  # one txn
    assert results[3]["value"] == 2
    assert results[4]["length"] == 2
    assert results[5]["found"] is True
    assert results[5]["value"] == 2
    with m.atomic() as tx:
        tx.check("a", v).set("x", 1).delete("b")
    assert m.get("x") == 1
    assert m.get("b") is None


def test_non_atomic_batch_applies_what_it_can(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    m.set("s", "text")
    results = store.batch(
        ns,
        [
            Op("set", "a", value="1"),
            Op("append", "s", items=("1",)),
            Op("set", "b", value="2"),
            Op("set", "a", value="3", if_absent=True),
            Op("incr", "s"),
        ],
        atomic=False,
    )
    assert "version" in results[0]
    assert "version" in results[2]
    assert results[1]["error"]["code"] == "type_mismatch"
    assert results[3]["error"]["code"] == "conflict"
    assert results[4]["error"]["code"] == "type_mismatch"
    assert m.get_many(["a", "b", "s"]) == {"a": 1, "b": 2, "s": "text"}
    usage = store.usage(ns)
    assert usage.keys == 3
    assert usage.bytes == sum(k.bytes for k in store.list_keys(ns).keys)
    assert usage.writes_today == 3  # the failed ops were rolled back with their counts


def test_idempotency_replay(store: PostgresStore, ns: str) -> None:
    ops = [Op("append", "l", items=("1",)), Op("incr", "n")]
    first = store.batch(ns, ops, idempotency_key="req-1")
    again = store.batch(ns, ops, idempotency_key="req-1")
    assert again == first
    assert Memory(ns, store=store).get_many(["l", "n"]) == {"l": [1], "n": 1}
    with pytest.raises(InvalidArgument):
        store.batch(ns, [Op("incr", "n", by=5)], idempotency_key="req-1")
    failed = store.batch(
        ns, [Op("append", "n", items=("1",))], atomic=False, idempotency_key="req-2"
    )
    assert (
        store.batch(ns, [Op("append", "n", items=("1",))], atomic=False, idempotency_key="req-2")
        == failed
    )
    # an idempotency key is per namespace
    assert store.batch(ns + "-b", ops, idempotency_key="req-1")[1]["value"] == 1
    assert store.usage(ns).writes_today == 2


def test_get_batch_reads_one_snapshot(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    m.set("a", {"x": 1})
    m.append("l", 1, 2, 3)
    results = store.batch(
        ns, [Op("get", "a"), Op("get", "l", tail=2), Op("get", "zz"), Op("get", "l")]
    )
    assert [r["found"] for r in results] == [True, True, False, True]
    assert results[0]["value"] == {"x": 1}
    assert results[1]["value"] == [2, 3]
    assert results[3]["value"] == [1, 2, 3]
    single = store.get(ns, "a")
    assert single is not None
    assert results[0]["version"] == single.version
    assert store.batch(ns, []) == []


@pytest.mark.parametrize("tail", [False, True], ids=["whole values", "with a tail"])
def test_get_batch_never_sees_half_of_a_write(
    make_store: Callable[..., PostgresStore], ns: str, tail: bool
) -> None:
    """A writer sets ``a`` and ``b`` to the same number in each atomic batch while a batch of
    gets reads both: every read sees one write whole (one statement, or one ``REPEATABLE
    READ`` transaction when a ``tail`` rides along), never ``a`` of one and ``b`` of another."""
    writer, reader = make_store(), make_store()
    Memory(ns, store=writer).set_many({"a": 0, "b": 0, "l": [0]})
    gets = [Op("get", "a"), Op("get", "b")] + ([Op("get", "l", tail=1)] if tail else [])
    done = threading.Event()

    def write() -> None:
        i = 0
        while not done.is_set():
            i += 1
            writer.batch(
                ns,
                [Op("set", "a", value=str(i)), Op("set", "b", value=str(i))],
                atomic=True,
            )

    thread = threading.Thread(target=write)
    thread.start()
    try:
        seen = set()
        for _ in range(300):
            a, b, *_ = reader.batch(ns, gets)
            assert a["value"] == b["value"], (a, b)
            seen.add(a["value"])
    finally:
        done.set()
        thread.join()
    assert len(seen) > 10, seen  # the reads did overlap the writes


# -- listing -------------------------------------------------------------------------------------

KEYS = [
    "a",
    "B",
    "b",
    "a/b",
    "a#b",
    "a?b",
    "a%20b",
    "..",
    ".",
    "a b",
    "a:b",
    " ",
    "~",
    "é",
    "e\u0301",
    "\u00ff",
    "\u0100",
    "\ue000",
    "\uffff",
    "😀",
    "😀/x",
    "𝄞",
    "日本",
    "z",
    "Z",
    "0",
    "a/",
    "a/b/c",
    "x" * 300,
]


def test_listing_is_in_utf8_byte_order(store: PostgresStore, ns: str, tmp_path: Any) -> None:
    m = Memory(ns, store=store)
    for i, key in enumerate(KEYS):
        m.set(key, i)
    expected = sorted(KEYS, key=lambda k: k.encode("utf-8"))
    assert m.list() == expected
    for i, key in enumerate(KEYS):  # every key round-trips exactly
        assert m.get(key) == i
    lite = SQLiteStore(tmp_path / "same.db")  # the embedded engine agrees, byte for byte
    try:
        for i, key in enumerate(KEYS):
            Memory(ns, store=lite).set(key, i)
        assert Memory(ns, store=lite).list() == expected
        for prefix in ("a", "a/", "😀", "\uffff", "x", "é", "nope"):
            assert m.list(prefix) == Memory(ns, store=lite).list(prefix)
    finally:
        lite.close()


@pytest.mark.parametrize("prefix", ["a", "a/", "😀", "\uffff", "\U0010ffff", "é"])
def test_prefix_listing(store: PostgresStore, ns: str, prefix: str) -> None:
    m = Memory(ns, store=store)
    keys = [*KEYS, "\U0010ffff", "\U0010ffffz"]
    for key in keys:
        m.set(key, 1)
    assert m.list(prefix) == sorted(
        (k for k in keys if k.startswith(prefix)), key=lambda k: k.encode()
    )


def test_cursor_paging(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    for key in KEYS:
        m.set(key, 1)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_keys(ns, cursor=cursor, limit=4)
        assert len(page.keys) <= 4
        seen += [k.key for k in page.keys]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == sorted(KEYS, key=lambda k: k.encode())
    assert pages == -(-len(KEYS) // 4)
    first = store.list_keys(ns, prefix="a", limit=2)
    assert [k.key for k in first.keys] == ["a", "a b"]
    assert first.cursor == "a b"
    rest = store.list_keys(ns, prefix="a", cursor=first.cursor, limit=1000)
    assert next(k.key for k in rest.keys) == "a#b"
    assert rest.cursor is None


def test_clear_and_usage(store: PostgresStore, ns: str) -> None:
    m = Memory(ns, store=store)
    empty = store.usage(ns)
    assert (empty.keys, empty.bytes, empty.writes_today) == (0, 0, 0)
    m.set("a", "xyz")
    m.append("l", 1, 2)
    m.incr("n")
    usage = store.usage(ns)
    assert usage.keys == 3
    assert usage.bytes == (1 + 5) + (1 + 5) + (1 + 1)
    assert usage.writes_today == 3
    assert usage.resets_at % DAY == 0
    assert len(m) == 3
    assert store.clear(ns) == 3
    assert m.list() == []
    assert m.get("l") is None
    after = store.usage(ns)
    assert (after.keys, after.bytes, after.writes_today) == (0, 0, 3)
    assert store.clear(ns) == 0
    m.append("l", 1)  # a cleared list starts over
    assert m.get("l") == [1]
