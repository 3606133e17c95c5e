"""``AsyncMemory`` on a store in this process (embedded SQLite, ``PostgresStore`` without a
server): many watches waiting at once hold back no other call.

A waiting ``changes`` holds its thread until a change or its end. In the default executor,
which every call of ``ThreadedAsyncStore`` shares and which has ``min(32, CPUs + 4)`` threads (6
on this 2-CPU machine and on a 2-vCPU function), as many waiting watches as threads held back
every other call, among them the write that would have woken them: measured with 8 watches on
SQLite, the write took 4.7 s, until the watches ran out, and half of them returned ``None``.
Waits now run in threads of their own (``backends/_threaded.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.forks import run_forked

from botwire import AsyncMemory, Memory

#: more than the default executor's threads on any machine (at most 32)
WATCHES = 40
HOLD = 20.0


class NoWakeups:
    """An embedded SQLite store without ``wakeup`` (as a store of your own may be): each
    waiting ``changes`` of ``AsyncMemory`` holds a thread of the wait pool."""

    def __init__(self, path: Path) -> None:
        from botwire.store import SQLiteStore

        self._store = SQLiteStore(str(path))

    def __getattr__(self, name: str) -> Any:
        if name == "wakeup":
            raise AttributeError(name)
        return getattr(self._store, name)


def _threaded(path: Path, namespace: str = "waits") -> AsyncMemory:
    return Memory(namespace, store=NoWakeups(path)).as_async()  # type: ignore[arg-type]


async def _many_watches_and_a_write(
    memory: AsyncMemory, count: int = WATCHES
) -> tuple[float, list[float], int]:
    """``count`` watches on one key, then a write: the seconds the write took, when each
    watch returned (each must return the written value), and how many threads the process
    had while they waited over those it had before."""
    after = await memory.set("k", 0)
    assert await memory.get("k") == 0  # the default executor's threads exist before the count
    before = threading.active_count()
    start = time.monotonic()

    async def watch() -> float:
        entry = await memory.watch("k", after=after, timeout=HOLD)
        assert entry is not None and entry.value == 1, entry
        return time.monotonic() - start

    watches = [asyncio.create_task(watch()) for _ in range(count)]
    await asyncio.sleep(1.0)  # every watch waits by now
    extra = threading.active_count() - before
    t = time.monotonic()
    assert await memory.get("k") == 0  # another call, while they wait
    await memory.set("k", 1)
    wrote = time.monotonic() - t
    return wrote, await asyncio.gather(*watches), extra


def _run(make: Callable[[], AsyncMemory], count: int = WATCHES) -> int:
    """The watches and the write of :func:`_many_watches_and_a_write`, checked; the threads
    the waiting watches held."""

    async def main() -> tuple[float, list[float], int]:
        async with make() as memory:
            return await _many_watches_and_a_write(memory, count)

    wrote, woke, extra = asyncio.run(main())
    # Not a timing claim: held back, the write waited for the watches' end (HOLD s) and they
    # returned at it; half of HOLD tells one from the other on any machine.
    assert wrote < HOLD / 2, f"the write waited {wrote:.1f} s behind the watches"
    assert max(woke) < HOLD / 2, f"watches returned at their end: {max(woke):.1f} s"
    return extra


def test_embedded_sqlite(tmp_path: Path) -> None:
    _run(lambda: AsyncMemory("waits", url=f"sqlite:///{tmp_path / 'w.db'}"))


def test_a_store_without_wakeups_waits_in_threads_of_its_own(tmp_path: Path) -> None:
    assert _run(lambda: _threaded(tmp_path / "t.db")) >= WATCHES  # a thread each


@pytest.mark.postgres
def test_postgres_store_without_a_server(postgres_url: str) -> None:
    from botwire_server.storage.postgres import PostgresStore

    with PostgresStore(postgres_url, max_size=4) as store:
        _run(lambda: Memory("waits-pg", store=store).as_async())


def _child(path: str, index: int, results: Any) -> None:
    """In a forked child: the same many watches and a write, with the parent's wait threads
    gone (the parent's executor counted them idle: a wait handed to it never ran)."""
    try:

        async def main() -> tuple[float, list[float], int]:
            async with _threaded(Path(path), f"waits-{index}") as memory:
                return await _many_watches_and_a_write(memory)

        wrote, woke, _ = asyncio.run(main())
        results.put((index, int(wrote < HOLD / 2 and max(woke) < HOLD / 2), None))
    except BaseException as exc:
        results.put((index, -1, repr(exc)))


def test_forked_children_get_wait_threads_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    _run(lambda: _threaded(path))  # the parent's wait threads exist now
    results = run_forked(_child, (str(path),), 2, timeout=HOLD + 30)
    assert results == [(0, 1, None), (1, 1, None)], results


# -- waiting without a thread or a poll per waiter (SupportsWakeups, store/_wakeups.py) --------

IDLE = 300  # more than WAIT_THREADS: in threads, the last 44 waited for one to be free


def test_idle_watches_hold_no_thread_embedded_sqlite(tmp_path: Path) -> None:
    extra = _run(lambda: AsyncMemory("idle", url=f"sqlite:///{tmp_path / 'i.db'}"), IDLE)
    # a thread each (256 of them) before; now the store's poller, and the reads' executor
    assert extra <= 8, f"{IDLE} waiting watches held {extra} threads"


@pytest.mark.postgres
def test_idle_watches_hold_no_thread_postgres_store(postgres_url: str) -> None:
    from botwire_server.storage.postgres import PostgresStore

    with PostgresStore(postgres_url, max_size=4) as store:
        extra = _run(lambda: Memory("idle-pg", store=store).as_async(), IDLE)
    assert extra <= 8, f"{IDLE} waiting watches held {extra} threads"


def test_sync_waits_share_one_poller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 threads waiting in ``watch`` on one embedded store: ``data_version`` is read by the
    store's one poller (~100 times a second), not by each waiter (50 times as often)."""
    from botwire.store import SQLiteStore

    reads = [0]
    version = SQLiteStore.data_version

    def counted(self: SQLiteStore) -> int:
        reads[0] += 1
        return version(self)

    monkeypatch.setattr(SQLiteStore, "data_version", counted)
    with Memory("sync", store=SQLiteStore(str(tmp_path / "s.db"))) as memory:
        after = memory.set("k", 0)
        got: list[Any] = []
        threads = [
            threading.Thread(
                target=lambda: got.append(memory.watch("k", after=after, timeout=HOLD))
            )
            for _ in range(50)
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        reads[0] = 0
        time.sleep(1.0)
        idle_reads = reads[0]
        memory.set("k", 1)
        for t in threads:
            t.join(HOLD)
    assert [e.value for e in got] == [1] * 50
    assert idle_reads < 500, f"{idle_reads} reads of data_version in 1 s by 50 waiters"


def _forked_waiter(store: Any, index: int, results: Any) -> None:
    """In a forked child, on the parent's store object: a watch woken by the child's own write
    (the parent's poller thread is not in the child; the child starts its own)."""
    try:
        memory = Memory("forked", store=store)
        after = memory.set("k", -1)
        start = time.monotonic()
        writer = threading.Timer(0.3, lambda: memory.set("k", index))
        writer.start()
        entry = memory.watch("k", after=after, timeout=HOLD)
        took = time.monotonic() - start
        ok = entry is not None and entry.value == index and took < 2.5  # the backstop is 5 s
        results.put((index, int(ok), None if ok else f"{entry} after {took:.1f} s"))
    except BaseException as exc:
        results.put((index, -1, repr(exc)))


def test_a_forked_child_polls_for_itself(tmp_path: Path) -> None:
    from botwire.store import SQLiteStore

    store = SQLiteStore(str(tmp_path / "f.db"))
    with Memory("forked", store=store) as memory:
        after = memory.set("parent", 0)
        waiting = threading.Thread(target=lambda: memory.watch("parent", after=after, timeout=5))
        waiting.start()  # the parent's poller runs across the fork
        time.sleep(0.2)
        try:
            results = run_forked(_forked_waiter, (store,), 1, timeout=HOLD + 10)
        finally:
            memory.set("parent", 1)
            waiting.join(10)
    assert results == [(0, 1, None)], results
