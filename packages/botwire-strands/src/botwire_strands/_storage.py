"""``BotWireStorage``: the ``strands.storage.Storage`` protocol over one botwire namespace.

Strands' unified storage is four operations over opaque bytes under '/'-separated keys
(``SnapshotSessionManager``, ``Agent(storage=...)``, the context stash). Each maps to one botwire
call, so a snapshot save is one round trip and a restore is one round trip, whatever the length
of the conversation.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import re
from typing import Any

from strands.storage.search.keyword import STOP_WORDS, token_overlap_score, tokenize
from strands.storage.storage import StorageSearchResult
from strands.types.exceptions import StorageError

from botwire import BotWireError, LeaseLost, Memory

from ._common import open_memory
from ._guard import InvocationGuard

__all__ = ["BotWireStorage"]

# Strands' own marker that a storage view is already scoped (``_resolve_namespace`` then skips
# its default auto-prefix). Looked up rather than copied so both stay the same object.
try:
    from strands.storage.storage import _NAMESPACED
except ImportError:  # pragma: no cover - a Strands release without the sentinel
    _NAMESPACED = object()

_EXTENSION = re.compile(r"\.[A-Za-z0-9]+$")
_B64 = "botwire_strands_b64"  # the wrapper of bytes that are not UTF-8
_DELETE = object()


def _normalize_key(key: str) -> str:
    """The shipped backends' key rule (S3Storage, LocalFileStorage): collapse '/' runs, strip
    outer '/', refuse empty keys, backslashes and '..' segments, so the same key reaches the same
    object whichever backend a deployment picks."""
    if not isinstance(key, str):
        raise StorageError(f"Invalid storage key {key!r}: keys are strings")
    if "\\" in key:
        raise StorageError(f"Invalid storage key {key!r}: backslashes are not allowed; use '/'")
    normalized = re.sub(r"/+", "/", key).strip("/")
    if not normalized:
        raise StorageError(f"Invalid storage key {key!r}: it is empty once '/' are stripped")
    if ".." in normalized.split("/"):
        raise StorageError(f"Invalid storage key {key!r}: '..' path segments are not allowed")
    return normalized


def _normalize_prefix(prefix: str) -> str:
    if "\\" in prefix:
        raise StorageError(f"Invalid storage prefix {prefix!r}: backslashes are not allowed")
    normalized = re.sub(r"/+", "/", prefix).lstrip("/")
    if ".." in normalized.split("/"):
        raise StorageError(f"Invalid storage prefix {prefix!r}: '..' segments are not allowed")
    return normalized


def _encode(data: bytes) -> Any:
    """Bytes as a botwire (JSON) value: UTF-8 text as a string (snapshots stay readable with
    ``botwire get``), anything else base64 in a one-key object. Both round-trip byte-exactly."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StorageError(f"Storage.write takes bytes, not {type(data).__name__}")
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {_B64: base64.b64encode(raw).decode("ascii")}


def _decode(key: str, value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get(_B64), str):
        return base64.b64decode(value[_B64])
    raise StorageError(
        f"Key {key!r} holds a {type(value).__name__} that BotWireStorage did not write; "
        "keep Strands' storage in a botwire namespace of its own"
    )


class BotWireStorage:
    """Strands ``Storage`` backed by botwire: ``SnapshotSessionManager(storage=BotWireStorage(
    "my-app"))`` or ``Agent(storage=BotWireStorage("my-app"))``.

    ``namespace`` is the botwire namespace (the unit of isolation, quota and authorization);
    Strands' own '/'-separated keys live inside it. Pass ``url``/``token`` or a ``memory``;
    otherwise ``BOTWIRE_URL``/``BOTWIRE_TOKEN`` apply. Every botwire failure is raised as
    Strands' ``StorageError`` naming the namespace and key, with the botwire error as its cause.
    ``guard=`` (or :meth:`guard`) fences writes on a session lease, like the repository.
    Methods run the (thread-safe) sync client in a worker thread, so one instance serves any event
    loop: Strands runs synchronous invocations on fresh loops.
    """

    # Strands' "already scoped" marker: unset on a root storage (Strands then scopes it through
    # namespace()), _NAMESPACED on the views namespace() returns.
    _namespaced: object = None

    def __init__(
        self,
        namespace: str = "strands",
        *,
        url: str | None = None,
        token: str | None = None,
        memory: Memory | None = None,
        guard: InvocationGuard | None = None,
    ) -> None:
        self._memory = open_memory(namespace, url=url, token=token, memory=memory)
        self._prefix = ""
        if guard is not None and guard.memory.namespace != self._memory.namespace:
            raise ValueError(
                f"guard namespace {guard.memory.namespace!r} differs from the storage's "
                f"{self._memory.namespace!r}: a write can only be fenced by a lease in the same "
                "botwire namespace; build it with storage.guard(session_id)"
            )
        # One cell shared with every view namespace() derives: a guard set later fences them all.
        self._fence: list[InvocationGuard | None] = [guard]

    def guard(
        self, session_id: str, *, ttl: float = 900.0, owner: str | None = None
    ) -> InvocationGuard:
        """An :class:`InvocationGuard` in this namespace that also fences this storage's writes
        and deletes, and those of every view :meth:`namespace` derives from it."""
        guard = InvocationGuard(session_id, memory=self._memory, ttl=ttl, owner=owner)
        self._fence[0] = guard
        return guard

    @property
    def memory(self) -> Memory:
        """The botwire client (its namespace holds every key of this storage)."""
        return self._memory

    def namespace(self, prefix: str) -> BotWireStorage:
        """A view whose keys all live under ``prefix/`` (nested views nest prefixes)."""
        normalized = _normalize_prefix(prefix).rstrip("/")
        scoped = object.__new__(type(self))
        scoped.__dict__.update(self.__dict__)
        scoped._prefix = f"{self._prefix}{normalized}/" if normalized else self._prefix
        scoped._namespaced = _NAMESPACED
        return scoped

    def _where(self, key: str) -> str:
        return f"namespace {self._memory.namespace!r}, key {key!r}"

    async def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except BotWireError as error:
            raise StorageError(f"botwire {what} failed ({self._where(key)}): {error}") from error

    def _fenced_commit(self, what: str, key: str, value: Any) -> None:
        """One round trip: the write (``value``) or delete (``_DELETE``), fenced on the lease
        while the guard holds it."""
        guard = self._fence[0]
        fence = guard.lease if guard is not None and guard.held else None
        try:
            if value is _DELETE:
                self._memory.delete(key, fence=fence)
            else:
                self._memory.set(key, value, fence=fence)
        except LeaseLost as error:  # only a fenced write raises it: guard is not None
            assert guard is not None
            raise guard._lost(f"{what} of {key!r}") from error

    async def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, overwriting (one botwire ``set``)."""
        full = self._prefix + _normalize_key(key)
        await self._call("write", full, self._fenced_commit, "write", full, _encode(data))

    async def read(self, key: str) -> bytes | None:
        """The bytes under ``key``, or ``None`` (one botwire ``get``)."""
        full = self._prefix + _normalize_key(key)
        missing = object()
        value = await self._call("read", full, self._memory.get, full, missing)
        return None if value is missing else _decode(full, value)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a no-op when it is absent (one botwire ``delete``)."""
        full = self._prefix + _normalize_key(key)
        await self._call("delete", full, self._fenced_commit, "delete", full, _DELETE)

    async def list(self, query: str = "") -> builtins.list[str]:
        """Full keys (relative to this view) starting with ``query``, sorted ascending."""
        full = self._prefix + _normalize_prefix(query)
        keys = await self._call("list", full, self._memory.list, full)
        # botwire lists in UTF-8 byte order, which is code point order: Python's sort order.
        return [k[len(self._prefix) :] for k in keys]

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        """Strands' keyword search (token overlap over key and content), best first.

        Same scoring as ``KeywordSearchStrategy``, but the entries are fetched with one
        ``get_many`` per 1,000 keys instead of one read per key.
        """
        query_tokens = tokenize(query) - STOP_WORDS
        if not query_tokens:
            return []
        keys = await self._call("list", self._prefix, self._memory.list, self._prefix)
        values = await self._call("get_many", self._prefix, self._memory.get_many, keys)
        results: builtins.list[StorageSearchResult] = []
        for full in keys:
            if full not in values:
                continue  # deleted between list and read
            try:
                data = _decode(full, values[full])
            except StorageError:
                continue  # not ours: skipped like an unreadable entry in Strands' strategy
            key = full[len(self._prefix) :]
            text = data.decode("utf-8", errors="replace")
            score = token_overlap_score(query_tokens, f"{_EXTENSION.sub('', key)} {text}")
            if score > 0:
                results.append(StorageSearchResult(key=key, score=score, data=data))
        results.sort(key=lambda r: r.score, reverse=True)
        return results

    def __repr__(self) -> str:
        return f"BotWireStorage({self._memory.namespace!r}, prefix={self._prefix!r})"
