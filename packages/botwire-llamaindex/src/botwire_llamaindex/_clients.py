"""Resolve the botwire clients an adapter talks to (private)."""

from __future__ import annotations

import asyncio
import weakref

from botwire import AsyncMemory, Memory

__all__ = ["DEFAULT_NAMESPACE", "MemoryPair"]

#: Namespace used by every LlamaIndex adapter when none is given.
DEFAULT_NAMESPACE = "llamaindex"


class MemoryPair:
    """The sync and async botwire clients behind one adapter object.

    Given a :class:`botwire.Memory` (or nothing: one is made from ``namespace``,
    ``url``, ``token`` or ``BOTWIRE_URL``), async clients are made with
    ``Memory.as_async()`` (same backend, config and namespace), one per running event
    loop: LlamaIndex runs some coroutines in short-lived loops (``asyncio_run``), and
    an async HTTP client must not be shared across loops. Given an
    :class:`botwire.AsyncMemory`, only async methods are available.
    """

    def __init__(
        self,
        namespace: str | None,
        memory: Memory | AsyncMemory | None,
        *,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self._sync: Memory | None = None
        self._fixed_async: AsyncMemory | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncMemory] = (
            weakref.WeakKeyDictionary()
        )
        if memory is None:
            self._sync = Memory(namespace or DEFAULT_NAMESPACE, url=url, token=token)
        elif isinstance(memory, Memory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._sync = memory.with_namespace(namespace) if needs_other else memory
        elif isinstance(memory, AsyncMemory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._fixed_async = memory.with_namespace(namespace) if needs_other else memory
        else:
            raise TypeError(
                f"memory= must be a botwire.Memory or AsyncMemory, got {type(memory).__name__}; "
                "e.g. memory=Memory('my-app', url='http://localhost:8765')"
            )

    @property
    def namespace(self) -> str:
        """The botwire namespace the clients use."""
        if self._sync is not None:
            return self._sync.namespace
        assert self._fixed_async is not None
        return self._fixed_async.namespace

    @property
    def sync(self) -> Memory:
        """The sync client; a clear error when only an AsyncMemory was given."""
        if self._sync is None:
            raise TypeError(
                f"this botwire adapter was given an AsyncMemory (namespace {self.namespace!r}), "
                "which serves only its async methods; pass memory=Memory(...) to use the sync "
                "methods too"
            )
        return self._sync

    @property
    def aio(self) -> AsyncMemory:
        """The async client for the running event loop (created on first use)."""
        if self._fixed_async is not None:
            return self._fixed_async
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self.sync.as_async()
            self._async[loop] = client
        return client
