"""``AsyncMemory``: the same persistent dictionary, with coroutines (its commands are
``Memory``'s, defined once in :mod:`._memory`)."""

from __future__ import annotations

from . import _common as c
from ._atomic import AsyncTransaction
from ._config import acquire_async_store, release
from ._memory import AsyncRun, Commands

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

    from ._lease import AsyncLease
    from ._queue import AsyncQueue
    from .store import AsyncStore

__all__ = ["AsyncMemory"]


def _sleep(seconds: float) -> Awaitable[None]:
    import asyncio  # only on contention: importing it loads ssl and socket

    return asyncio.sleep(seconds)


class AsyncMemory(Commands, AsyncRun):
    """Persistent key-value memory for one namespace, for asyncio code.

    Over a server it speaks HTTP with ``httpx.AsyncClient`` (``pip install "botwire[async]"``);
    over the embedded store it runs SQLite in a worker thread. Same methods as
    :class:`~botwire.Memory`, as coroutines (one definition of each, in
    ``botwire/_memory.py``); ``key in memory`` is ``await memory.contains(key)``.

    Example::

        from botwire import AsyncMemory

        async with AsyncMemory("user-42") as memory:
            await memory.append("chat_history", {"user": "hi", "assistant": "hello"})
            recent = await memory.tail("chat_history", 20)
            new_total = await memory.update("total", lambda n: n + 1, default=0)
    """

    _acquire = staticmethod(acquire_async_store)
    _sleep = staticmethod(_sleep)
    _store: AsyncStore

    def atomic(self, *, idempotency_key: str | None = None) -> AsyncTransaction:
        """A builder of checks and writes committed all together or not at all (``async with``
        commits on leaving the block; at most 1,000 ops). ``idempotency_key`` (or
        ``commit(idempotency_key=)``): as for :meth:`append`."""
        return AsyncTransaction(self, idempotency_key)

    def lease(
        self, name: str, ttl: float = 30.0, *, holder: str | None = None, wait: float = 0.0
    ) -> AsyncLease:
        """A lease ``name`` with a fencing token (``async with`` acquires and releases it; see
        :class:`~botwire.AsyncLease` and docs/coordination.md). Unacquired until then."""
        from ._lease import AsyncLease  # on first use: one module less on a cold start

        return AsyncLease(self, name, ttl, holder=holder, wait=wait)

    def queue(self, name: str, *, max_claims: int = 5) -> AsyncQueue:
        """The at-least-once hand-off queue ``name`` in this namespace (docs/coordination.md)."""
        from ._queue import AsyncQueue

        return AsyncQueue(self, name, max_claims=max_claims)

    async def iter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Keys starting with ``prefix``, in UTF-8 byte order, following every page
        (``async for``)."""
        keys, cursor = await self._keys_page(prefix, None)
        for key in keys:
            yield key
        while cursor is not None:
            keys, cursor = await self._keys_page(prefix, cursor)
            for key in keys:
                yield key

    async def aclose(self) -> None:
        """Release this handle; the shared client closes with its last user."""
        if self._closed:
            return
        self._closed = True
        self._store = c.ClosedStore("AsyncMemory", self.namespace)
        if self._settings is not None:
            store = release(self._settings, True)
            if store is not None:
                await store.aclose()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
