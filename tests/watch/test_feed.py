"""The change feed's semantics on both SQL engines (issue 18): tombstones, coalescing, resume,
paging that never splits a version, prefixes, ``clear``, compaction, isolation and bad input.

Each case runs on ``SQLiteStore`` and on ``PostgresStore`` (a real server), through the public
``Memory``/``watch_prefix`` where it can."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botwire import Changes, Compacted, InvalidArgument, Memory
from botwire.store import SQLiteStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SQLiteStore(tmp_path / "feed.db")
    else:
        from botwire_server.storage.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_url"), max_size=2)
    try:
        yield s
    finally:
        s.close()


_ns = iter(range(10**6))


def _memory(store: Any) -> Memory:
    return Memory(f"feed-{next(_ns)}-{time.time_ns()}", store=store)


def _keys(changes: Changes) -> list[tuple[str, bool]]:
    return [(e.key, e.deleted) for e in changes.entries]


def test_a_delete_is_a_tombstone_with_the_delete_version(store: Any) -> None:
    m = _memory(store)
    v = m.set("a", 1)
    assert m.delete("nothing-here") is False
    m.delete("a")
    found = m.watch_prefix(after=v, timeout=0)
    (tomb,) = found.entries
    assert tomb.key == "a" and tomb.deleted and tomb.value is None and tomb.version > v
    assert found.version == tomb.version
    entry = m.watch("a", after=v, timeout=0)
    assert entry is not None and entry.deleted and entry.version == tomb.version
    assert m.watch_prefix(after=None).entries == []  # after=None: live entries, no tombstones


def test_a_recreated_key_drops_its_tombstone(store: Any) -> None:
    m = _memory(store)
    v0 = m.set("a", 1)
    m.delete("a")
    v2 = m.set("a", 2)
    found = m.watch_prefix(after=v0, timeout=0)
    assert _keys(found) == [("a", False)]
    assert found.entries[0].value == 2 and found.entries[0].version == v2
    assert m.watch_prefix(after=None).entries[0].value == 2


def test_changes_are_coalesced_in_version_order(store: Any) -> None:
    m = _memory(store)
    start = m.set("z", 0)
    for i in range(5):
        m.set("x", i)
    m.append("list", 1, 2)
    m.append("list", 3)
    m.incr("n", 2)
    found = m.watch_prefix(after=start, timeout=0)
    assert [e.key for e in found.entries] == ["x", "list", "n"]  # one each, latest state
    assert [e.value for e in found.entries] == [4, [1, 2, 3], 2]
    versions = [e.version for e in found.entries]
    assert versions == sorted(versions) and found.version == versions[-1]
    assert m.watch_prefix(after=found.version, timeout=0).entries == []  # resumed: nothing new


def test_paging_never_splits_a_version(store: Any) -> None:
    m = _memory(store)
    start = m.set("first", 0)
    m.set_many({f"batch/{i}": i for i in range(5)})  # one version for five keys
    m.set("last", 1)
    page = m.watch_prefix(after=start, limit=2, timeout=0)
    assert page.more and len(page.entries) == 5  # the version's keys come together
    assert {e.version for e in page.entries} == {page.version}
    rest = m.watch_prefix(after=page.version, limit=2, timeout=0)
    assert _keys(rest) == [("last", False)] and not rest.more
    # a page that ends before a version group: the group comes next time
    page1 = m.watch_prefix(after=None, limit=1)
    assert _keys(page1) == [("first", False)] and page1.more
    seen = {e.key for e in page1.entries}
    after = page1.version
    while True:
        page = m.watch_prefix(after=after, limit=3, timeout=0)
        seen |= {e.key for e in page.entries}
        after = page.version
        if not page.more:
            break
    assert seen == {"first", "last", *(f"batch/{i}" for i in range(5))}


def test_prefix_selects_keys(store: Any) -> None:
    m = _memory(store)
    start = m.set("other", 0)
    m.set("job/1", "a")
    m.set("jobs", "b")  # shares the prefix "job" but not "job/"
    m.set("jo", "c")
    m.delete("other")
    assert _keys(m.watch_prefix("job/", after=start, timeout=0)) == [("job/1", False)]
    assert [k for k, _ in _keys(m.watch_prefix("job", after=start, timeout=0))] == [
        "job/1",
        "jobs",
    ]
    assert m.watch("jo", after=start, timeout=0).value == "c"  # type: ignore[union-attr]
    assert m.watch("job", after=start, timeout=0) is None  # an exact key, not a prefix


def test_clear_reports_every_key_deleted_at_one_version(store: Any) -> None:
    m = _memory(store)
    start = m.set_many({"a": 1, "b": 2, "c/d": 3})
    assert m.clear() == 3
    found = m.watch_prefix(after=start, timeout=0)
    assert _keys(found) == [("a", True), ("b", True), ("c/d", True)]
    assert len({e.version for e in found.entries}) == 1


def test_namespaces_are_isolated(store: Any) -> None:
    a, b = _memory(store), _memory(store)
    start = a.set("mine", 1)
    b.set("theirs", 1)
    b.delete("theirs")
    assert _keys(a.watch_prefix(after=start - 1, timeout=0)) == [("mine", False)]


def test_compacted_after_pruning(store: Any) -> None:
    m, other = _memory(store), _memory(store)
    v = m.set("a", 1)
    m.delete("a")
    w = other.set("kept", 1)
    store.engine.tombstone_seconds = 0.0  # everything is past retention
    time.sleep(0.05)
    assert store.prune_tombstones() >= 1
    with pytest.raises(Compacted) as caught:
        m.watch_prefix(after=v, timeout=0)
    assert caught.value.namespace == m.namespace and "after=None" in str(caught.value)
    with pytest.raises(Compacted):
        m.watch("a", after=v, timeout=0)
    fresh = m.watch_prefix(after=None)  # the fix the message names: re-read
    assert fresh.entries == [] and fresh.version >= caught.value.details["compacted"]
    assert m.watch_prefix(after=fresh.version, timeout=0).entries == []
    assert other.watch_prefix(after=w, timeout=0).entries == []  # another namespace: fine
    assert _keys(other.watch_prefix(after=w - 1, timeout=0)) == [("kept", False)]


def test_bad_arguments_name_the_rule(store: Any) -> None:
    m = _memory(store)
    for kwargs, word in (
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": -1}, "after"),
        ({"after": 2**63}, "after"),  # past a 64-bit version: refused, never an OverflowError
        ({"after": "7"}, "after"),
        ({"timeout": -1}, "timeout"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            m.watch_prefix("", **kwargs)  # type: ignore[arg-type]
        assert word in str(caught.value) and m.namespace in str(caught.value)
    with pytest.raises(InvalidArgument):
        m.watch_prefix("a\x00b", after=0)


def test_wait_returns_on_a_write_and_times_out_otherwise(store: Any) -> None:
    m = _memory(store)
    v = m.set("a", 1)
    started = time.monotonic()
    assert m.watch("a", after=v, timeout=0.3) is None
    assert time.monotonic() - started >= 0.29
    assert m.watch_prefix(after=v, timeout=0.2).entries == []


def test_watch_without_after_finds_a_key_past_a_thousand_longer_keys(store: Any) -> None:
    """``watch(key)`` reads the feed under ``key`` as a prefix; when more than one page of
    longer keys (``job/step-N``) comes first it pages on, instead of reading the first page
    again for ever, and a tombstone of a key deleted before the call is no change of it."""
    m = _memory(store)
    m.set_many({f"job/step-{i:04}": i for i in range(600)})
    m.set_many({f"job/step-{i:04}": i for i in range(600, 1200)})
    m.set("job", "deleted before the watch")
    m.delete("job")
    m.set_many({f"job/late-{i:04}": i for i in range(500)})
    m.set_many({f"job/late-{i:04}": i for i in range(500, 1000)})
    started = time.monotonic()
    assert m.watch("job", timeout=0.3) is None  # absent: waits for its creation, then gives up
    assert time.monotonic() - started >= 0.29
    v = m.set("job", {"state": "done"})
    entry = m.watch("job", timeout=5)
    assert entry is not None and (entry.value, entry.version) == ({"state": "done"}, v)


def test_a_store_without_changes_says_so() -> None:
    import asyncio

    from support.dictstore import DictStore

    from botwire import AsyncMemory
    from botwire.backends._threaded import ThreadedAsyncStore

    store = DictStore(time.time)
    with pytest.raises(InvalidArgument) as caught:
        Memory("plain", store=store).watch("k", timeout=0)
    assert "DictStore" in str(caught.value) and "SupportsChanges" in str(caught.value)

    async def run() -> None:
        memory = AsyncMemory("plain", store=ThreadedAsyncStore(store, owned=False))
        with pytest.raises(InvalidArgument, match="DictStore"):
            await memory.watch_prefix("", after=0, timeout=0)

    asyncio.run(run())


def test_expiry_is_no_event_but_a_write_removing_an_expired_key_is(tmp_path: Path) -> None:
    from botwire._clock import TestingClock

    clock = TestingClock()
    store = SQLiteStore(tmp_path / "ttl.db", clock=clock)
    try:
        m = Memory("ttl", store=store)
        start = m.set("purged", 1, ttl=5)
        m.set("removed", 1, ttl=5)
        clock.advance(6)
        assert store.purge_expired() == 2  # expiry: no tombstone, no event
        assert m.watch_prefix(after=start, timeout=0).entries == []
        v = m.set("again", 1, ttl=5)
        clock.advance(6)
        assert m.delete("again") is False  # expired already: the write removes its row ...
        found = m.watch_prefix(after=v, timeout=0)
        assert [(e.key, e.deleted) for e in found.entries] == [("again", True)]  # ... a delete
    finally:
        store.close()
