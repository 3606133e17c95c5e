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


async def _many_watches_and_a_write(memory: AsyncMemory) -> tuple[float, list[float]]:
    """``WATCHES`` watches on one key, then a write: the seconds the write took and when
    each watch returned (each must return the written value)."""
    after = await memory.set("k", 0)
    start = time.monotonic()

    async def watch() -> float:
        entry = await memory.watch("k", after=after, timeout=HOLD)
        assert entry is not None and entry.value == 1, entry
        return time.monotonic() - start

    watches = [asyncio.create_task(watch()) for _ in range(WATCHES)]
    await asyncio.sleep(0.5)  # every watch waits by now
    t = time.monotonic()
    assert await memory.get("k") == 0  # another call, while they wait
    await memory.set("k", 1)
    wrote = time.monotonic() - t
    return wrote, await asyncio.gather(*watches)


def _check(wrote: float, woke: list[float]) -> None:
    # Not a timing claim: held back, the write waited for the watches' end (HOLD s) and they
    # returned at it; half of HOLD tells one from the other on any machine.
    assert wrote < HOLD / 2, f"the write waited {wrote:.1f} s behind the watches"
    assert max(woke) < HOLD / 2, f"watches returned at their end: {max(woke):.1f} s"


def _run(make: Callable[[], AsyncMemory]) -> None:
    async def main() -> tuple[float, list[float]]:
        async with make() as memory:
            return await _many_watches_and_a_write(memory)

    _check(*asyncio.run(main()))


def test_embedded_sqlite(tmp_path: Path) -> None:
    _run(lambda: AsyncMemory("waits", url=f"sqlite:///{tmp_path / 'w.db'}"))


@pytest.mark.postgres
def test_postgres_store_without_a_server(postgres_url: str) -> None:
    from botwire_server.storage.postgres import PostgresStore

    with PostgresStore(postgres_url, max_size=4) as store:
        _run(lambda: Memory("waits-pg", store=store).as_async())


def _child(url: str, index: int, results: Any) -> None:
    """In a forked child: the same many watches and a write, with the parent's wait threads
    gone (the parent's executor counted them idle: a wait handed to it never ran)."""
    try:

        async def main() -> tuple[float, list[float]]:
            async with AsyncMemory(f"waits-{index}", url=url) as memory:
                return await _many_watches_and_a_write(memory)

        wrote, woke = asyncio.run(main())
        results.put((index, int(wrote < HOLD / 2 and max(woke) < HOLD / 2), None))
    except BaseException as exc:
        results.put((index, -1, repr(exc)))


def test_forked_children_get_wait_threads_of_their_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    _run(lambda: AsyncMemory("waits", url=url))  # the parent's wait threads exist now
    results = run_forked(_child, (url,), 2, timeout=HOLD + 30)
    assert results == [(0, 1, None), (1, 1, None)], results
