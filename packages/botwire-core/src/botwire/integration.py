"""Helpers for framework adapters built on botwire (LangChain, LlamaIndex, ...).

An adapter object usually takes ``memory=`` (a ``Memory`` or ``AsyncMemory``) or a namespace
plus ``url``/``token``, and needs both a sync and an async client on the same backend:
:class:`MemoryPair` resolves that once.
"""

from __future__ import annotations

from ._async import AsyncMemory
from ._memory import Memory

__all__ = ["MemoryPair"]


class MemoryPair:
    """The sync and async botwire clients behind one adapter object.

    Given a :class:`botwire.Memory` (or nothing: one is made from ``namespace``, ``url``,
    ``token`` or ``BOTWIRE_URL``, falling back to ``default_namespace``), the async client is
    ``memory.as_async()`` on the same backend; it may be used from any event loop (the HTTP
    backend keeps one connection pool per loop). Given an :class:`botwire.AsyncMemory`, only
    async methods are available.

    Example::

        pair = MemoryPair(None, None, url="http://localhost:8765", default_namespace="my-app")
        pair.sync.append("log", 1)
        await pair.aio.tail("log", 10)
    """

    def __init__(
        self,
        namespace: str | None,
        memory: Memory | AsyncMemory | None,
        *,
        url: str | None = None,
        token: str | None = None,
        default_namespace: str,
    ) -> None:
        self._sync: Memory | None = None
        self._aio: AsyncMemory | None = None
        if memory is None:
            self._sync = Memory(namespace or default_namespace, url=url, token=token)
        elif isinstance(memory, Memory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._sync = memory.with_namespace(namespace) if needs_other else memory
        elif isinstance(memory, AsyncMemory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._aio = memory.with_namespace(namespace) if needs_other else memory
        else:
            raise TypeError(
                f"memory= must be a botwire.Memory or AsyncMemory, got {type(memory).__name__}; "
                "e.g. memory=Memory('my-app', url='http://localhost:8765')"
            )

    @property
    def namespace(self) -> str:
        """The botwire namespace the clients use."""
        client = self._sync if self._sync is not None else self._aio
        assert client is not None
        return client.namespace

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
        """The async client (created on first use)."""
        if self._aio is None:
            self._aio = self.sync.as_async()
        return self._aio
