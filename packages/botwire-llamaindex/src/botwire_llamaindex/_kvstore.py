"""``BotWireKVStore``: a LlamaIndex ``BaseKVStore`` persisted in botwire (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.storage.kvstore.types import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_COLLECTION,
    BaseKVStore,
)

from botwire.integration import BATCH_ITEMS, chunks, write_batches
from botwire_llamaindex._clients import MemoryPair
from botwire_llamaindex._codec import escape_segment

if TYPE_CHECKING:
    from botwire import AsyncMemory, Memory

__all__ = ["KV_KEY_PREFIX", "BotWireKVStore"]

#: Every entry lives under ``KV_KEY_PREFIX + escaped(collection) + "/" + key``.
KV_KEY_PREFIX = "kv/"

# Keys per get_many / set_many call (one round trip each).
_BATCH = BATCH_ITEMS


def _cap(batch_size: int) -> int:
    return min(max(1, int(batch_size)), _BATCH)


class BotWireKVStore(BaseKVStore):
    """LlamaIndex key-value store persisted in botwire; collections are key prefixes.

    An entry ``(collection, key)`` is stored under the botwire key
    ``"kv/" + escape(collection) + "/" + key``, where ``escape`` turns ``%`` into
    ``%25`` and ``/`` into ``%2F``; every collection name and key round-trips
    exactly. ``get_all`` is one listing plus one ``get_many`` per 500 keys;
    ``put_all`` writes each batch of ``batch_size`` entries atomically.

    Use it for ``KVDocumentStore`` / ``KVIndexStore`` so documents and indexes
    survive across serverless invocations.

    Example:
        ```python
        from llama_index.core import StorageContext
        from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
        from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore
        from botwire_llamaindex import BotWireKVStore

        kv = BotWireKVStore("my-rag-app")
        storage = StorageContext.from_defaults(
            docstore=KVDocumentStore(kv), index_store=KVIndexStore(kv)
        )
        ```
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        ttl: float | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self._clients = MemoryPair(namespace, memory, url=url, token=token)
        self.ttl = ttl

    @property
    def namespace(self) -> str:
        """The botwire namespace holding the entries."""
        return self._clients.namespace

    # -- key mapping --------------------------------------------------------------------

    @staticmethod
    def _prefix(collection: str) -> str:
        if not isinstance(collection, str):
            raise TypeError(f"collection must be a str, got {type(collection).__name__}")
        return KV_KEY_PREFIX + escape_segment(collection) + "/"

    def _key(self, key: str, collection: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"BotWireKVStore keys must be str, got {type(key).__name__}")
        return self._prefix(collection) + key

    @staticmethod
    def _check_value(key: str, val: Any) -> None:
        if not isinstance(val, dict):
            raise TypeError(
                f"BotWireKVStore value for key {key!r} must be a dict (LlamaIndex stores "
                f"JSON objects), got {type(val).__name__}"
            )

    # -- sync ------------------------------------------------------------------------------

    def put(self, key: str, val: dict[str, Any], collection: str = DEFAULT_COLLECTION) -> None:
        """Store ``val`` under ``key`` in ``collection`` (overwrites)."""
        self._check_value(key, val)
        self._clients.sync.set(self._key(key, collection), val, ttl=self.ttl)

    def put_all(
        self,
        kv_pairs: list[tuple[str, dict[str, Any]]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """Store many pairs; each batch of ``batch_size`` is one atomic ``set_many``.

        Batches are also capped at 500 keys and about 4 MiB of JSON, so any
        ``batch_size`` fits the server's limits.
        """
        for batch in write_batches(self._batch(kv_pairs, collection), _cap(batch_size)):
            self._clients.sync.set_many(batch, ttl=self.ttl)

    def get(self, key: str, collection: str = DEFAULT_COLLECTION) -> dict[str, Any] | None:
        """The dict stored under ``key``, or ``None``."""
        value = self._clients.sync.get(self._key(key, collection))
        return value if value is None else dict(value)

    def get_all(self, collection: str = DEFAULT_COLLECTION) -> dict[str, dict[str, Any]]:
        """Every ``key -> dict`` of ``collection``."""
        prefix = self._prefix(collection)
        keys = self._clients.sync.list(prefix)
        found: dict[str, Any] = {}
        for chunk in chunks(keys, _BATCH):
            found.update(self._clients.sync.get_many(list(chunk)))
        return {k[len(prefix) :]: found[k] for k in keys if k in found}

    def delete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        """Delete ``key``; whether it existed."""
        return bool(self._clients.sync.delete(self._key(key, collection)))

    # -- async (native AsyncMemory) ---------------------------------------------------------

    async def aput(
        self, key: str, val: dict[str, Any], collection: str = DEFAULT_COLLECTION
    ) -> None:
        """Async :meth:`put`."""
        self._check_value(key, val)
        await self._clients.aio.set(self._key(key, collection), val, ttl=self.ttl)

    async def aput_all(
        self,
        kv_pairs: list[tuple[str, dict[str, Any]]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """Async :meth:`put_all`."""
        for batch in write_batches(self._batch(kv_pairs, collection), _cap(batch_size)):
            await self._clients.aio.set_many(batch, ttl=self.ttl)

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> dict[str, Any] | None:
        """Async :meth:`get`."""
        value = await self._clients.aio.get(self._key(key, collection))
        return value if value is None else dict(value)

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> dict[str, dict[str, Any]]:
        """Async :meth:`get_all`."""
        prefix = self._prefix(collection)
        client = self._clients.aio
        keys = await client.list(prefix)
        found: dict[str, Any] = {}
        for chunk in chunks(keys, _BATCH):
            found.update(await client.get_many(list(chunk)))
        return {k[len(prefix) :]: found[k] for k in keys if k in found}

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        """Async :meth:`delete`."""
        return bool(await self._clients.aio.delete(self._key(key, collection)))

    # -- helpers ------------------------------------------------------------------------------

    def _batch(self, kv_pairs: Sequence[tuple[str, dict[str, Any]]], collection: str) -> list[Any]:
        mapping: dict[str, Any] = {}
        for key, val in kv_pairs:
            self._check_value(key, val)
            mapping[self._key(key, collection)] = val
        return list(mapping.items())

    def __repr__(self) -> str:
        return f"BotWireKVStore(namespace={self.namespace!r})"
