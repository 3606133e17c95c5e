"""``AsyncMemory``: the same persistent dictionary, with coroutines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _common as c
from ._atomic import AsyncTransaction
from ._config import Settings, acquire_async_store, release, resolve
from ._errors import Conflict
from ._types import Entry, Usage

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["AsyncMemory"]


class AsyncMemory:
    """Persistent key-value memory for one namespace, for asyncio code.

    Over a server it speaks HTTP with ``httpx.AsyncClient`` (``pip install "botwire[async]"``);
    over the embedded store it runs SQLite in a worker thread. Same methods as
    :class:`~botwire.Memory`, as coroutines.

    Example::

        from botwire import AsyncMemory

        async with AsyncMemory("user-42") as memory:
            await memory.append("chat_history", {"user": "hi", "assistant": "hello"})
            recent = await memory.tail("chat_history", 20)
    """

    def __init__(
        self,
        namespace: str,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        keepalive_expiry: float | None = None,
        store: AsyncStore | None = None,
    ) -> None:
        self.namespace = c.check_namespace(namespace)
        self._settings: Settings | None = None
        if store is None:
            self._settings = resolve(url, token, timeout, retries, keepalive_expiry)
            store = acquire_async_store(self._settings)
        self._store: AsyncStore = store
        self._closed = False

    @property
    def url(self) -> str | None:
        """The backend's URL (``http(s)://...`` or ``sqlite:///...``); ``None`` for a ``store=``."""
        return self._settings.url if self._settings is not None else None

    def with_namespace(self, namespace: str) -> AsyncMemory:
        """Another namespace on the same backend and settings."""
        if self._settings is None:
            return AsyncMemory(namespace, store=self._store)
        s = self._settings
        return AsyncMemory(
            namespace,
            url=s.url,
            token=s.token,
            timeout=s.timeout,
            retries=s.retries,
            keepalive_expiry=s.keepalive_expiry,
        )

    async def get(self, key: str, default: Any = None) -> Any:
        entry = await self._store.get(self.namespace, c.check_key(key, self.namespace))
        return default if entry is None else entry.value

    async def entry(self, key: str) -> Entry | None:
        return await self._store.get(self.namespace, c.check_key(key, self.namespace))

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        if_version: int | None = None,
        if_absent: bool = False,
    ) -> int:
        op = c.op_set(
            self.namespace, key, value, ttl=ttl, if_version=if_version, if_absent=if_absent
        )
        version: int = (await self._store.batch(self.namespace, [op]))[0]["version"]
        return version

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        op = c.op_delete(self.namespace, key, if_version=if_version)
        deleted: bool = (await self._store.batch(self.namespace, [op]))[0]["deleted"]
        return deleted

    async def append(
        self,
        key: str,
        *items: Any,
        max_len: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """As :meth:`Memory.append <botwire.Memory.append>` (``idempotency_key`` included)."""
        op = c.op_append(self.namespace, key, items, max_len=max_len, ttl=ttl)
        length: int = (await self._batch([op], idempotency_key))[0]["length"]
        return length

    async def _batch(self, ops: list[Any], idempotency_key: str | None) -> list[dict[str, Any]]:
        ikey = c.check_idempotency_key(self.namespace, idempotency_key)
        if ikey is None:
            return await self._store.batch(self.namespace, ops)
        return await self._store.batch(self.namespace, ops, idempotency_key=ikey)

    async def tail(self, key: str, n: int) -> list[Any]:
        c.check_key(key, self.namespace)
        entry = await self._store.get(
            self.namespace, key, tail=c.check_tail(self.namespace, key, n)
        )
        return [] if entry is None else list(entry.value)

    async def pop(
        self, key: str, default: Any = None, *, idempotency_key: str | None = None
    ) -> Any:
        result = (await self._batch([c.op_pop(self.namespace, key)], idempotency_key))[0]
        return result["value"] if result["found"] else default

    async def incr(
        self, key: str, by: int | float = 1, *, idempotency_key: str | None = None
    ) -> int | float:
        results = await self._batch([c.op_incr(self.namespace, key, by)], idempotency_key)
        value: int | float = results[0]["value"]
        return value

    async def update(
        self,
        key: str,
        fn: Callable[[Any], Any | Awaitable[Any]],
        default: Any = None,
        *,
        ttl: float | None = None,
    ) -> Any:
        """Read-modify-write with a version check, retried on conflict; ``fn`` may be async."""
        for attempt in range(c.UPDATE_ATTEMPTS):
            current = await self.entry(key)
            new = fn(current.value if current is not None else default)
            if isinstance(new, Awaitable):
                new = await new
            try:
                if current is None:
                    await self.set(key, new, ttl=ttl, if_absent=True)
                else:
                    await self.set(key, new, ttl=ttl, if_version=current.version)
            except Conflict:
                import asyncio  # only on contention: importing it loads ssl and socket

                await asyncio.sleep(c.update_backoff(attempt))
                continue
            return new
        raise c.update_conflict(self.namespace, key, c.UPDATE_ATTEMPTS)

    async def _reads(self, keys: Iterable[str]) -> tuple[list[Any], list[dict[str, Any]]]:
        ops = [c.op_get(self.namespace, k) for k in keys]  # every key checked before any I/O
        results: list[dict[str, Any]] = []
        if ops:
            for part in c.chunks(ops):
                results.extend(await self._store.batch(self.namespace, part, atomic=True))
        return ops, results

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """As :meth:`Memory.get_many <botwire.Memory.get_many>`: 1,000 keys per round trip."""
        ops, results = await self._reads(keys)
        return {op.key: r["value"] for op, r in zip(ops, results, strict=True) if r["found"]}

    async def entries(self, keys: Iterable[str]) -> dict[str, Entry]:
        """Entries (value, version, times) of the ``keys`` that exist, as :meth:`get_many`."""
        ops, results = await self._reads(keys)
        return c.entries_from(ops, results) if ops else {}

    async def set_many(
        self,
        mapping: Mapping[str, Any],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """As :meth:`Memory.set_many <botwire.Memory.set_many>`: atomic, at most 1,000 keys."""
        ops = c.set_many_ops(self.namespace, mapping, ttl)
        if not ops:
            return 0
        c.check_atomic_size(self.namespace, ops, "set_many")
        results = await self._batch(ops, idempotency_key)
        return max(r["version"] for r in results)

    async def delete_many(self, keys: Iterable[str], *, idempotency_key: str | None = None) -> int:
        """As :meth:`Memory.delete_many <botwire.Memory.delete_many>`: 1,000 keys per slice."""
        ops = [c.op_delete(self.namespace, k) for k in keys]
        if not ops:
            return 0
        parts = c.chunks(ops)
        ikeys = c.chunk_keys(c.check_idempotency_key(self.namespace, idempotency_key), len(parts))
        deleted = 0
        for part, ikey in zip(parts, ikeys, strict=True):
            deleted += sum(bool(r["deleted"]) for r in await self._batch(part, ikey))
        return deleted

    def atomic(self, *, idempotency_key: str | None = None) -> AsyncTransaction:
        return AsyncTransaction(self, idempotency_key)

    async def iter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        if prefix:
            c.check_key(prefix, self.namespace)
        cursor: str | None = None
        while True:
            page = await self._store.list_keys(self.namespace, prefix=prefix, cursor=cursor)
            for info in page.keys:
                yield info.key
            if page.cursor is None:
                return
            cursor = page.cursor

    async def list(self, prefix: str = "") -> list[str]:
        return [k async for k in self.iter_keys(prefix)]

    async def keys(self) -> list[str]:
        return await self.list()

    async def contains(self, key: str) -> bool:
        """Whether ``key`` exists (the async form of ``key in memory``)."""
        c.check_key(key, self.namespace)
        page = await self._store.list_keys(self.namespace, prefix=key, limit=1)
        return bool(page.keys) and page.keys[0].key == key

    async def clear(self) -> int:
        return await self._store.clear(self.namespace)

    async def usage(self) -> Usage:
        return await self._store.usage(self.namespace)

    async def aclose(self) -> None:
        """Release this handle; the shared client closes with its last user."""
        if self._closed:
            return
        self._closed = True
        self._store = c.ClosedStore("AsyncMemory", self.namespace)  # type: ignore[assignment]
        if self._settings is not None:
            store = release(self._settings, True)
            if store is not None:
                await store.aclose()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        where = self._settings.url if self._settings is not None else repr(self._store)
        return f"AsyncMemory({self.namespace!r}, backend={where!r})"
