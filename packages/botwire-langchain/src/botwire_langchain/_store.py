"""LangChain ``BaseStore`` implementations backed by botwire (private)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from langchain_core.stores import BaseStore

from botwire.integration import BATCH_ITEMS, chunks, write_batches
from botwire_langchain._clients import MemoryPair

if TYPE_CHECKING:
    from botwire import AsyncMemory, Memory

__all__ = ["DEFAULT_STORE_NAMESPACE", "BotWireByteStore", "BotWireStore"]

#: Namespace used when neither ``namespace`` nor ``memory`` is given.
DEFAULT_STORE_NAMESPACE = "langchain-store"

# Keys per get_many/set_many/delete_many call (each call is one round trip).
_BATCH = BATCH_ITEMS
V = TypeVar("V")


class _BotWireBaseStore(BaseStore[str, V], Generic[V]):
    """Shared key mapping and batching; subclasses choose the value encoding."""

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        key_prefix: str = "",
        ttl: float | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise TypeError(f"key_prefix must be a str, got {type(key_prefix).__name__}")
        self._clients = MemoryPair(
            namespace, memory, url=url, token=token, default_namespace=DEFAULT_STORE_NAMESPACE
        )
        self.key_prefix = key_prefix
        self.ttl = ttl

    @property
    def namespace(self) -> str:
        """The botwire namespace holding the store's keys."""
        return self._clients.namespace

    # -- value encoding (overridden by the byte store) -------------------------------

    def _encode(self, key: str, value: V) -> Any:
        return value

    def _decode(self, key: str, raw: Any) -> V:
        value: V = raw  # the stored JSON value is the caller's V (no conversion by default)
        return value

    # -- key mapping ------------------------------------------------------------------

    def _to_botwire(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(
                f"{type(self).__name__} keys must be str, got {type(key).__name__} ({key!r})"
            )
        return self.key_prefix + key

    def _from_botwire(self, key: str) -> str:
        return key[len(self.key_prefix) :]

    def _full_prefix(self, prefix: str | None) -> str:
        return self.key_prefix + (prefix or "")

    # -- sync API --------------------------------------------------------------------

    def mget(self, keys: Sequence[str]) -> list[V | None]:
        """Values for ``keys`` in order, ``None`` where a key is absent."""
        keys = list(keys)
        found: dict[str, Any] = {}
        for chunk in chunks(sorted({self._to_botwire(k) for k in keys})):
            found.update(self._clients.sync.get_many(list(chunk)))
        return [self._lookup(found, k) for k in keys]

    def mset(self, key_value_pairs: Sequence[tuple[str, V]]) -> None:
        """Set every pair; each batch (up to 500 keys, about 4 MiB) is written atomically."""
        for batch in write_batches(list(self._mapping(key_value_pairs).items())):
            self._clients.sync.set_many(batch, ttl=self.ttl)

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete ``keys``; missing keys are ignored."""
        unique = sorted({self._to_botwire(k) for k in keys})
        for chunk in chunks(unique):
            self._clients.sync.delete_many(list(chunk))

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Yield every key (optionally only those starting with ``prefix``)."""
        for key in self._clients.sync.iter_keys(self._full_prefix(prefix)):
            yield self._from_botwire(key)

    # -- async API (native AsyncMemory) ------------------------------------------------

    async def amget(self, keys: Sequence[str]) -> list[V | None]:
        """Async :meth:`mget`."""
        keys = list(keys)
        found: dict[str, Any] = {}
        for chunk in chunks(sorted({self._to_botwire(k) for k in keys})):
            found.update(await self._clients.aio.get_many(list(chunk)))
        return [self._lookup(found, k) for k in keys]

    async def amset(self, key_value_pairs: Sequence[tuple[str, V]]) -> None:
        """Async :meth:`mset`."""
        for batch in write_batches(list(self._mapping(key_value_pairs).items())):
            await self._clients.aio.set_many(batch, ttl=self.ttl)

    async def amdelete(self, keys: Sequence[str]) -> None:
        """Async :meth:`mdelete`."""
        unique = sorted({self._to_botwire(k) for k in keys})
        for chunk in chunks(unique):
            await self._clients.aio.delete_many(list(chunk))

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        """Async :meth:`yield_keys` (an async generator)."""
        for key in await self._clients.aio.list(self._full_prefix(prefix)):
            yield self._from_botwire(key)

    # -- helpers ------------------------------------------------------------------------

    def _lookup(self, found: dict[str, Any], key: str) -> V | None:
        bw_key = self._to_botwire(key)
        if bw_key not in found:
            return None
        return self._decode(key, found[bw_key])

    def _mapping(self, key_value_pairs: Sequence[tuple[str, V]]) -> dict[str, Any]:
        # Later pairs win, as with repeated assignment.
        return {self._to_botwire(k): self._encode(k, v) for k, v in key_value_pairs}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(namespace={self.namespace!r}, key_prefix={self.key_prefix!r})"
        )


class BotWireStore(_BotWireBaseStore[Any]):
    """LangChain ``BaseStore[str, Any]`` whose values are JSON, persisted in botwire.

    Values are stored natively (a dict comes back a dict, a list of floats a list of
    floats). ``mset`` writes each batch atomically with ``set_many``; ``mget`` and
    ``mdelete`` are one round trip per 500 keys. ``key_prefix`` lets several stores
    share a namespace; ``ttl`` (seconds) expires written values. The ``a*`` methods
    use ``AsyncMemory`` natively; pass ``memory=Memory(...)`` to choose the backend.

    Example:
        ```python
        from botwire_langchain import BotWireStore

        store = BotWireStore("my-app")
        store.mset([("user:1", {"name": "Ada"}), ("user:2", {"name": "Lin"})])
        store.mget(["user:1", "missing"])  # [{"name": "Ada"}, None]
        list(store.yield_keys(prefix="user:"))  # ["user:1", "user:2"]
        ```
    """


class BotWireByteStore(_BotWireBaseStore[bytes]):
    """LangChain ``ByteStore`` (``BaseStore[str, bytes]``) persisted in botwire.

    Bytes are stored as base64 text. Use it wherever LangChain wants a
    ``ByteStore``, e.g. ``CacheBackedEmbeddings.from_bytes_store``.

    Example:
        ```python
        from botwire_langchain import BotWireByteStore

        cache = BotWireByteStore("embedding-cache")
        cache.mset([("doc-1", b"\\x00\\x01")])
        cache.mget(["doc-1"])  # [b"\\x00\\x01"]
        ```
    """

    def _encode(self, key: str, value: bytes) -> Any:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"BotWireByteStore value for key {key!r} must be bytes, got "
                f"{type(value).__name__}; use BotWireStore for JSON values"
            )
        return base64.b64encode(bytes(value)).decode("ascii")

    def _decode(self, key: str, raw: Any) -> bytes:
        if not isinstance(raw, str):
            raise TypeError(
                f"botwire key {self._to_botwire(key)!r} in namespace {self.namespace!r} "
                f"holds a {type(raw).__name__}, not base64 bytes written by BotWireByteStore"
            )
        try:
            return base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError(
                f"botwire key {self._to_botwire(key)!r} in namespace {self.namespace!r} "
                "does not hold base64 bytes written by BotWireByteStore"
            ) from exc
