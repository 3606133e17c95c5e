"""``AsyncMemory`` over the embedded store: the sync store runs in a worker thread, so the event
loop never blocks on SQLite's lock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .._errors import InvalidArgument
from .._policy import policy_method
from .._types import Changes, Entry, KeyPage, Op, Policy, Usage
from ..store import Store

__all__ = ["ThreadedAsyncStore"]


class ThreadedAsyncStore:
    """An :class:`~botwire.store.AsyncStore` around a sync :class:`~botwire.store.Store`."""

    def __init__(self, store: Store, *, owned: bool = True) -> None:
        self._store = store
        self._owned = owned

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        return await asyncio.to_thread(self._store.get, namespace, key, tail=tail)

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(
            self._store.batch, namespace, ops, atomic=atomic, idempotency_key=idempotency_key
        )

    async def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        return await asyncio.to_thread(
            self._store.list_keys, namespace, prefix=prefix, cursor=cursor, limit=limit
        )

    async def changes(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: int | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> Changes:
        """The sync store's ``changes`` (``SupportsChanges``) in a worker thread;
        ``InvalidArgument`` naming the store when it has none (``watch`` then cannot work)."""
        changes = getattr(self._store, "changes", None)
        if changes is None:
            raise InvalidArgument(
                f"botwire: the store behind namespace {namespace!r} "
                f"({type(self._store).__name__}) cannot watch (it has no changes(), "
                "SupportsChanges); use the embedded SQLite store or a botwire server.",
                namespace=namespace,
            )
        found: Changes = await asyncio.to_thread(
            changes, namespace, prefix=prefix, after=after, limit=limit, wait=wait
        )
        return found

    async def clear(self, namespace: str) -> int:
        return await asyncio.to_thread(self._store.clear, namespace)

    async def usage(self, namespace: str) -> Usage:
        return await asyncio.to_thread(self._store.usage, namespace)

    async def get_policy(self, namespace: str) -> Policy:
        policy: Policy = await asyncio.to_thread(
            policy_method(self._store, namespace, "get_policy"), namespace
        )
        return policy

    async def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        policy: Policy = await asyncio.to_thread(
            policy_method(self._store, namespace, "set_policy"), namespace, changes
        )
        return policy

    async def aclose(self) -> None:
        if self._owned:
            await asyncio.to_thread(self._store.close)

    def __repr__(self) -> str:
        return f"ThreadedAsyncStore({self._store!r})"
