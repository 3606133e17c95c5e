"""What a server's poller wakes held polls by, when another process wrote: the keys changed in a
namespace after the version it last saw (``changed_keys``, on real SQLite and PostgreSQL
stores), and which namespaces it remembers a version for (``WatchHub``).

The poller looks at the high-water versions of the watched namespaces, then reads the keys
changed in those that moved and wakes only the polls under them; ``None`` (too many keys, or
deletions forgotten by pruning after that version) wakes them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botwire import Memory
from botwire.store import SQLiteStore
from botwire_server.watch import WatchHub


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        from botwire_server.storage.postgres import PostgresStore

        opened: Any = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        opened = SQLiteStore(tmp_path / "keys.db")
    yield opened
    opened.close()


def _ns(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


def test_the_keys_written_and_deleted_after_a_version(store: Any) -> None:
    ns, quiet = _ns("changed"), _ns("quiet")
    m = Memory(ns, store=store)
    base = m.set("old", 1)
    Memory(quiet, store=store).set("k", 1)
    m.set("a", 1)
    m.append("list", 1, 2)
    m.delete("old")
    m.set("b/c d%", 2)
    found = store.changed_keys({ns: base, quiet: store.high_waters([quiet])[quiet]}, 10)
    assert sorted(found[ns]) == ["a", "b/c d%", "list", "old"]
    assert found[quiet] == []
    assert store.changed_keys({ns: store.high_waters([ns])[ns]}, 10)[ns] == []


def test_more_keys_than_the_limit_are_unknown(store: Any) -> None:
    ns = _ns("many")
    m = Memory(ns, store=store)
    base = m.set("seed", 0)
    m.set_many({f"k{i}": i for i in range(6)})
    m.delete_many(["k0", "k1", "seed"])  # tombstones count as changed keys too
    assert store.changed_keys({ns: base}, 6) == {ns: None}
    assert sorted(store.changed_keys({ns: base}, 7)[ns]) == sorted(
        ["seed", *(f"k{i}" for i in range(6))]
    )


def test_deletions_forgotten_after_the_version_are_unknown(store: Any) -> None:
    """Pruned tombstones: the poller cannot tell which keys went, so every poll must read (and
    the one that last read before them is told 410)."""
    ns = _ns("pruned")
    m = Memory(ns, store=store)
    base = m.set("x", 1)
    m.delete("x")
    store.engine.tombstone_seconds = 0
    time.sleep(0.05)
    assert store.prune_tombstones() >= 1
    assert store.changed_keys({ns: base}, 10) == {ns: None}


def test_high_waters_of_many_namespaces(store: Any) -> None:
    """The poller's look at 450 namespaces at once (one statement on PostgreSQL) finds each
    one's version: written, deleted, pruned, never written, named twice."""
    base = _ns("hw")
    written = [f"{base}-w{i}" for i in range(300)]
    versions = {ns: Memory(ns, store=store).set("k", i) for i, ns in enumerate(written)}
    deleted = Memory(f"{base}-d", store=store)
    deleted.set("k", 1)
    deleted.delete("k")
    pruned = Memory(f"{base}-p", store=store)
    pruned.set("k", 1)
    pruned.delete("k")
    store.engine.tombstone_seconds = 0
    time.sleep(0.05)
    store.prune_tombstones()
    names = [*written, f"{base}-d", f"{base}-p", *(f"{base}-never{i}" for i in range(148))]
    found = store.high_waters([*names, written[0]])
    assert sorted(found) == sorted(names)
    assert all(found[ns] == versions[ns] for ns in written)
    assert versions[written[-1]] < found[f"{base}-d"] < found[f"{base}-p"]
    assert all(found[f"{base}-never{i}"] == 0 for i in range(148))


def test_a_namespace_whose_last_poll_left_is_not_remembered(tmp_path: Path) -> None:
    """The poll's namespace leaves the poller's memory with its last waiter, also when the
    poller's look at the versions was in flight then (its answer arrives after): remembered,
    a waiter arriving hours later made the poller read every key changed since."""
    store = SQLiteStore(tmp_path / "hub.db")
    hub = WatchHub(store, max_watchers=10, per_namespace=10)

    async def main() -> None:
        with hub.waiting("ns", "p/"):
            assert hub._moved(["ns"], {"ns": 3}) == {"ns": 0}
        hub._moved(["ns"], {"ns": 7})  # the look started while the poll still waited
        assert "ns" not in hub._high

    try:
        asyncio.run(main())
    finally:
        store.close()
