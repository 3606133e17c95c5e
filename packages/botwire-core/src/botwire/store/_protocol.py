"""The one storage protocol every backend implements (embedded SQLite, HTTP, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .._types import Entry, KeyPage, Op, Usage

__all__ = ["AsyncStore", "Store"]


@runtime_checkable
class Store(Protocol):
    """A synchronous backend. ``batch`` results are JSON-shaped dicts, one per op:

    ``get`` → ``{"found", "value", "version", "created_at", "updated_at", "expires_at"}``;
    ``set`` → ``{"version"}``; ``delete`` → ``{"deleted"}``; ``append`` → ``{"version", "length"}``;
    ``incr`` → ``{"version", "value"}``; ``pop`` → ``{"found", "value", "version"}``;
    ``check`` → ``{"ok": True}``. With ``atomic=False`` a failed op yields
    ``{"error": {...}}`` instead; with ``atomic=True`` the first failure is raised and nothing is
    applied. An ``idempotency_key`` makes a retried batch return its first results.
    """

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None: ...

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage: ...

    def clear(self, namespace: str) -> int: ...

    def usage(self, namespace: str) -> Usage: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    """The same protocol as :class:`Store`, with coroutines."""

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None: ...

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]: ...

    async def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage: ...

    async def clear(self, namespace: str) -> int: ...

    async def usage(self, namespace: str) -> Usage: ...

    async def aclose(self) -> None: ...
