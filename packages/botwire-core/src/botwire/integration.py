"""Helpers for framework adapters built on botwire (LangChain, LlamaIndex, ...).

An adapter object usually takes ``memory=`` (a ``Memory`` or ``AsyncMemory``) or a namespace
plus ``url``/``token``, and needs both a sync and an async client on the same backend:
:class:`MemoryPair` resolves that once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ._async import AsyncMemory
from ._codec import dumps
from ._memory import Memory

__all__ = ["BATCH_BYTES", "BATCH_ITEMS", "MemoryPair", "chunks", "write_batches"]

#: Keys per ``set_many``/``get_many`` call an adapter sends (a batch holds at most 1000 ops).
BATCH_ITEMS = 500
#: Approximate JSON bytes per ``set_many`` call (a botwire server accepts 16 MiB by default).
BATCH_BYTES = 4 * 1024 * 1024


def chunks(seq: Sequence[Any], size: int = BATCH_ITEMS) -> Iterator[Sequence[Any]]:
    """``seq`` in consecutive slices of at most ``size``."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def write_batches(
    items: Iterable[tuple[str, Any]], max_items: int = BATCH_ITEMS
) -> Iterator[dict[str, Any]]:
    """Split writes into ``set_many`` mappings of at most ``max_items`` keys and about
    :data:`BATCH_BYTES` of JSON, well inside a server's batch limits."""
    batch: dict[str, Any] = {}
    size = 0
    for key, value in items:
        item_size = len(key.encode("utf-8")) + _json_size(value)
        if batch and (len(batch) >= max_items or size + item_size > BATCH_BYTES):
            yield batch
            batch, size = {}, 0
        batch[key] = value
        size += item_size
    if batch:
        yield batch


def _json_size(value: Any) -> int:
    try:
        return len(dumps(value).encode("utf-8"))
    except (TypeError, ValueError):
        return 0  # not JSON: set_many refuses it with NotSerializable, naming the key


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
        adapter: str = "this botwire adapter",
    ) -> None:
        self._adapter = adapter
        self._sync: Memory | None = None
        self._aio: AsyncMemory | None = None
        self._owns_sync = memory is None  # made here: ours to close
        if memory is None:
            self._sync = Memory(namespace or default_namespace, url=url, token=token)
        elif isinstance(memory, Memory):
            other = namespace if namespace != memory.namespace else None  # None: keep memory's
            self._sync = memory.with_namespace(other) if other is not None else memory
            self._owns_sync = other is not None
        elif isinstance(memory, AsyncMemory):
            other = namespace if namespace != memory.namespace else None
            self._aio = memory.with_namespace(other) if other is not None else memory
        else:
            raise TypeError(
                f"{adapter} needs memory= to be a botwire.Memory or AsyncMemory, got "
                f"{type(memory).__name__}; e.g. memory=Memory('my-app', url='http://localhost:8765')"
            )
        self._owns_aio = False  # set when the async client is derived from the sync one

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
                f"{self._adapter} was given an AsyncMemory (namespace {self.namespace!r}), "
                "which serves only its async methods; pass memory=Memory(...) to use the sync "
                "methods too"
            )
        return self._sync

    @property
    def aio(self) -> AsyncMemory:
        """The async client (created on first use)."""
        if self._aio is None:
            self._aio = self.sync.as_async()
            self._owns_aio = True
        return self._aio

    @property
    def has_sync(self) -> bool:
        """Whether sync methods are available (false when only an AsyncMemory was given)."""
        return self._sync is not None

    def close(self) -> None:
        """Close the sync client if this pair made it (a client passed in stays open)."""
        if self._owns_sync and self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        """Close what this pair made: the async client derived from the sync one, then
        :meth:`close`."""
        if self._owns_aio and self._aio is not None:
            await self._aio.aclose()
            self._aio = None
            self._owns_aio = False
        self.close()
