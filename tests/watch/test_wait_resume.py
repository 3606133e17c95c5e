"""A waiting read resumes from what its last read saw, not from the caller's ``after``.

A held watch is woken by every write to its namespace. If each wake read again from the
caller's ``after``, a waiter holding an old ``after`` with a prefix that matches nothing would
re-read all the namespace wrote since, per waiter and per write: 100 read-only watches on a
namespace of 50,000 keys took a SQLite server from 4% to 58-71% of a core and other tenants'
PUTs from 2.7 ms to 194-249 ms (median). The reads' row counts are not observable from
outside, but their starting point is: a wait that began before its ``after`` was compacted
(tombstones pruned) and is woken after it would raise ``Compacted`` if it still read from
there. Each case below fails that way when a wake reads from the caller's ``after``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.server import running_server

from botwire import AsyncMemory, Memory
from botwire._clock import TestingClock
from botwire.backends._threaded import ThreadedAsyncStore
from botwire.store import SQLiteStore

HOUR = 3601.0  # past the default tombstone retention (1 h)


def _compacted_meanwhile(store: SQLiteStore, clock: TestingClock, m: Memory) -> None:
    """While a wait is held: forget the tombstones it started after, then wake it with a
    write under another prefix, then give it what it waits for."""
    time.sleep(0.3)  # the wait's first read is done
    clock.advance(HOUR)
    assert store.prune_tombstones() == 1
    m.set("other", 1)  # wakes the waiter: nothing under its prefix
    time.sleep(0.3)
    m.set("job/done", True)


def _store(tmp_path: Path) -> tuple[SQLiteStore, TestingClock, Memory, int]:
    clock = TestingClock()
    store = SQLiteStore(tmp_path / "resume.db", clock=clock)
    m = Memory("resume", store=store)
    after = m.set("gone", 1)
    m.delete("gone")  # a tombstone after `after`: pruning it compacts past `after`
    return store, clock, m, after


def test_a_sync_wait_reads_on_from_its_last_read(tmp_path: Path) -> None:
    store, clock, m, after = _store(tmp_path)
    try:
        writer = threading.Thread(target=_compacted_meanwhile, args=(store, clock, m))
        writer.start()
        found = m.watch_prefix("job/", after=after, timeout=20)
        writer.join()
        assert [e.key for e in found.entries] == ["job/done"]
    finally:
        store.close()


def test_an_async_wait_reads_on_from_its_last_read(tmp_path: Path) -> None:
    store, clock, m, after = _store(tmp_path)

    async def main() -> list[str]:
        async with AsyncMemory("resume", store=ThreadedAsyncStore(store, owned=False)) as am:
            writer = asyncio.create_task(asyncio.to_thread(_compacted_meanwhile, store, clock, m))
            found = await am.watch_prefix("job/", after=after, timeout=20)
            await writer
            return [e.key for e in found.entries]

    try:
        assert asyncio.run(main()) == ["job/done"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_held_poll_on_the_server_reads_on_from_its_last_read(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database: Any = tmp_path / "held.db"
    if backend == "postgres":
        database = request.getfixturevalue("postgres_url")
    with running_server(
        "--tombstone-retention",
        "0.5",
        env={"BOTWIRE_HOUSEKEEPING_SECONDS": "0.2"},
        database=database,
    ) as server:
        ns = f"held-{time.time_ns()}"
        with Memory(ns, url=server.url) as m:
            after = m.set("gone", 1)
            m.delete("gone")
            answer: dict[str, Any] = {}

            def poll() -> None:
                got = httpx.get(
                    f"{server.url}/v1/namespaces/{ns}/changes",
                    params={"prefix": "job/", "after": after, "wait": 20},
                    timeout=30,
                )
                answer.update(status=got.status_code, body=got.json())

            poller = threading.Thread(target=poll)
            poller.start()
            deadline = time.monotonic() + 20
            while True:  # until housekeeping has pruned the tombstone: `after` is compacted
                probe = httpx.get(
                    f"{server.url}/v1/namespaces/{ns}/changes", params={"after": after}
                )
                if probe.status_code == 410:
                    break
                assert time.monotonic() < deadline, "housekeeping never pruned the tombstone"
                time.sleep(0.1)
            m.set("other", 1)  # wakes the held poll: nothing under its prefix
            time.sleep(0.3)
            m.set("job/done", True)
            poller.join()
    assert answer["status"] == 200, answer
    assert [c["key"] for c in answer["body"]["changes"]] == ["job/done"]
