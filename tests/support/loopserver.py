"""An asyncio server on a thread of its own: the shared start-up and shut-down of the test
relays (``faultproxy.FaultProxy``, ``relay.Relay``), which run inside the test process so a
test can script and count what they do.

A subclass defines ``_listen`` (bind, set ``self._server`` and ``self.port``) and may extend
``_closing`` (run on the loop before it stops, e.g. to reset open connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TypeVar

__all__ = ["LoopServer"]

S = TypeVar("S", bound="LoopServer")


class LoopServer:
    """``with Subclass(...) as server:`` listens until the block ends, then cancels every
    connection still open (stalled ones included) and joins its thread."""

    thread_name = "loop-server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    async def _listen(self) -> None:
        raise NotImplementedError

    def _closing(self) -> None:
        """On the loop thread, at exit: stop accepting."""
        if self._server is not None:
            self._server.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._listen())
        self._ready.set()
        loop.run_forever()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def __enter__(self: S) -> S:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:

            def stop() -> None:
                self._closing()
                loop.stop()

            loop.call_soon_threadsafe(stop)
        if self._thread is not None:
            self._thread.join(10)
