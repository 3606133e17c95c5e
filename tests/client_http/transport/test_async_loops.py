"""One ``AsyncMemory`` used across many event loops (a warm Lambda or CLI handler calling
``asyncio.run()`` per invocation): each loop's httpx client is closed with its loop, and no loop
is kept alive. Before the fix every ``asyncio.run()`` left a client and its socket behind (a
WeakKeyDictionary keyed by the loop, whose value held the loop): 200 runs held 201 sockets, and
under a 64-descriptor limit the 57th invocation failed with EMFILE."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref

from support.server import ServerProcess

from botwire import AsyncMemory


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_asyncio_run_per_call_keeps_no_socket_nor_loop_per_call(
    server: ServerProcess, ns: str
) -> None:
    memory = AsyncMemory(ns, url=server.url, retries=0)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def handler(i: int) -> object:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await memory.set("k", i)
        return await memory.get("k")

    assert asyncio.run(handler(0)) == 0
    base = _fds()
    for i in range(1, 41):
        assert asyncio.run(handler(i)) == i
        assert _fds() <= base  # each run's socket closed as its loop shut down (no gc needed)
    gc.collect()
    assert [ref for ref in loops if ref() is not None] == []
    asyncio.run(memory.aclose())


def test_loops_closed_without_a_shutdown_leave_no_socket_behind(
    server: ServerProcess, ns: str
) -> None:
    """``loop.close()`` without ``shutdown_asyncgens()``: nothing can be awaited on that loop
    any more; the next loop's first call closes the dead loop's sockets and drops its client."""
    memory = AsyncMemory(ns, url=server.url, retries=0)
    loops = []
    base = None
    for i in range(20):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(memory.set("k", i))
        loop.close()
        loops.append(weakref.ref(loop))
        del loop
        if base is None:
            base = _fds()
        assert _fds() <= base  # only the last closed loop's socket is still open
    gc.collect()
    assert sum(ref() is not None for ref in loops) <= 1  # the last one, until the next loop
    asyncio.run(memory.aclose())
    gc.collect()
    assert all(ref() is None for ref in loops)
