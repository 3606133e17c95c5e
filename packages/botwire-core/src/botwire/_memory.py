"""``Memory``: a persistent dictionary for one namespace."""

from __future__ import annotations

import time
from _collections_abc import MutableMapping  # not collections.abc: it imports collections

from . import _common as c
from ._config import Settings, acquire_store, release, resolve
from ._errors import Conflict
from ._types import Entry, Usage

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any

    from ._async import AsyncMemory
    from ._atomic import Transaction
    from .store import Store

__all__ = ["Memory"]

_MISSING: Any = object()


class Memory(MutableMapping[str, "Any"]):
    """Persistent key-value memory for one namespace (a user, a session, an agent).

    Values are any JSON and come back with exactly the type stored. Where the data lives comes
    from ``url`` or ``BOTWIRE_URL``: a botwire server (``https://...``) or an embedded SQLite
    file (the default, ``~/.botwire/memory.db``).

    Example::

        from botwire import Memory

        memory = Memory("user-42")
        history = memory.get("chat_history") or []
        memory.append("chat_history", {"user": "hi", "assistant": "hello"})  # atomic, O(1)
        memory["preferences"] = {"tone": "brief"}
        assert "preferences" in memory

    It is thread-safe and a context manager; instances with the same settings share one
    connection, so creating one per invocation is cheap.
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
        store: Store | None = None,
    ) -> None:
        self.namespace = c.check_namespace(namespace)
        self._settings: Settings | None = None
        if store is None:
            self._settings = resolve(url, token, timeout, retries, keepalive_expiry)
            store = acquire_store(self._settings)
        self._store: Store = store
        self._closed = False

    # -- construction helpers ----------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The backend's URL (``http(s)://...`` or ``sqlite:///...``); ``None`` for a ``store=``."""
        return self._settings.url if self._settings is not None else None

    def with_namespace(self, namespace: str) -> Memory:
        """Another namespace on the same backend and settings."""
        if self._settings is None:
            return Memory(namespace, store=self._store)
        s = self._settings
        return Memory(
            namespace,
            url=s.url,
            token=s.token,
            timeout=s.timeout,
            retries=s.retries,
            keepalive_expiry=s.keepalive_expiry,
        )

    def as_async(self) -> AsyncMemory:
        """An :class:`~botwire.AsyncMemory` for this namespace on the same backend."""
        from ._async import AsyncMemory

        if self._settings is None:
            from .backends._threaded import ThreadedAsyncStore

            return AsyncMemory(self.namespace, store=ThreadedAsyncStore(self._store, owned=False))
        s = self._settings
        return AsyncMemory(
            self.namespace,
            url=s.url,
            token=s.token,
            timeout=s.timeout,
            retries=s.retries,
            keepalive_expiry=s.keepalive_expiry,
        )

    # -- single keys ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` when it is absent or expired."""
        entry = self._store.get(self.namespace, c.check_key(key, self.namespace))
        return default if entry is None else entry.value

    def entry(self, key: str) -> Entry | None:
        """The value with its version and times, or ``None``."""
        return self._store.get(self.namespace, c.check_key(key, self.namespace))

    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        if_version: int | None = None,
        if_absent: bool = False,
    ) -> int:
        """Store ``value``; returns the new version. ``ttl`` is in seconds (none: no expiry).

        ``if_version`` / ``if_absent`` make it a compare-and-set; a failed condition raises
        :class:`~botwire.Conflict` carrying the current version.
        """
        op = c.op_set(
            self.namespace, key, value, ttl=ttl, if_version=if_version, if_absent=if_absent
        )
        version: int = self._store.batch(self.namespace, [op])[0]["version"]
        return version

    def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Remove ``key``; returns whether it existed. Deleting twice is harmless."""
        op = c.op_delete(self.namespace, key, if_version=if_version)
        deleted: bool = self._store.batch(self.namespace, [op])[0]["deleted"]
        return deleted

    # -- lists and counters --------------------------------------------------------------------

    def append(
        self,
        key: str,
        *items: Any,
        max_len: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Add ``items`` at the end of the list at ``key`` (created when absent), without
        reading or rewriting it; returns the new length. ``max_len`` drops the oldest items.

        ``idempotency_key`` (e.g. ``f"{context.aws_request_id}:history"``) makes a repeat of
        this call (a platform retrying the whole invocation) apply once and return the first
        result; it is scoped to the namespace and kept 24 h. See docs/client.md.
        """
        op = c.op_append(self.namespace, key, items, max_len=max_len, ttl=ttl)
        length: int = self._batch([op], idempotency_key)[0]["length"]
        return length

    def tail(self, key: str, n: int) -> list[Any]:
        """The last ``n`` items of the list at ``key`` (``[]`` when absent)."""
        c.check_key(key, self.namespace)
        entry = self._store.get(self.namespace, key, tail=c.check_tail(self.namespace, key, n))
        return [] if entry is None else list(entry.value)

    def pop(  # type: ignore[override]
        self, key: str, default: Any = None, *, idempotency_key: str | None = None
    ) -> Any:
        """Remove and return the last item of the list at ``key`` (``default`` when empty).

        Note: unlike ``dict.pop`` this pops from the *list stored at* ``key``; use
        :meth:`delete` to remove a key. ``idempotency_key``: as for :meth:`append`.
        """
        result = self._batch([c.op_pop(self.namespace, key)], idempotency_key)[0]
        return result["value"] if result["found"] else default

    def incr(
        self, key: str, by: int | float = 1, *, idempotency_key: str | None = None
    ) -> int | float:
        """Add ``by`` to the number at ``key`` atomically (absent counts as 0).
        ``idempotency_key``: as for :meth:`append`."""
        value: int | float = self._batch([c.op_incr(self.namespace, key, by)], idempotency_key)[0][
            "value"
        ]
        return value

    def _batch(self, ops: list[Any], idempotency_key: str | None) -> list[dict[str, Any]]:
        """One atomic batch, with the caller's idempotency key (checked before any I/O)."""
        ikey = c.check_idempotency_key(self.namespace, idempotency_key)
        if ikey is None:
            return self._store.batch(self.namespace, ops)
        return self._store.batch(self.namespace, ops, idempotency_key=ikey)

    def update(  # type: ignore[override]
        self,
        key: str | Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        fn: Callable[[Any], Any] | None = None,
        default: Any = None,
        *,
        ttl: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read-modify-write ``key`` with ``fn`` safely under concurrency; returns the new value.

        ``fn`` gets the current value (``default`` when absent) and returns the new one; the
        write is conditional on the version read and retried on :class:`~botwire.Conflict`.
        Called like ``dict.update`` (a mapping and/or keywords, no ``fn``) it sets those keys
        atomically.
        """
        if fn is None:
            if isinstance(key, str):
                raise TypeError(f"update({key!r}, fn): fn is required when key is a str")
            mapping = dict(key)
            mapping.update(kwargs)
            if mapping:
                self.set_many(mapping)
            return None
        assert isinstance(key, str)
        for attempt in range(c.UPDATE_ATTEMPTS):
            current = self.entry(key)
            new = fn(current.value if current is not None else default)
            try:
                if current is None:
                    self.set(key, new, ttl=ttl, if_absent=True)
                else:
                    self.set(key, new, ttl=ttl, if_version=current.version)
            except Conflict:
                time.sleep(c.update_backoff(attempt))
                continue
            return new
        raise c.update_conflict(self.namespace, key, c.UPDATE_ATTEMPTS)

    # -- several keys --------------------------------------------------------------------------

    def _reads(self, keys: Iterable[str]) -> tuple[list[Any], list[dict[str, Any]]]:
        """``get`` ops for ``keys`` and their results, 1,000 keys per round trip."""
        ops = [c.op_get(self.namespace, k) for k in keys]  # every key checked before any I/O
        results: list[dict[str, Any]] = []
        if ops:
            for part in c.chunks(ops):
                results.extend(self._store.batch(self.namespace, part, atomic=True))
        return ops, results

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of the ``keys`` that exist: one round trip per 1,000 keys (each slice is read
        consistently; past 1,000 keys the slices are read one after another)."""
        ops, results = self._reads(keys)
        return {op.key: r["value"] for op, r in zip(ops, results, strict=True) if r["found"]}

    def entries(self, keys: Iterable[str]) -> dict[str, Entry]:
        """Entries (value, version, times) of the ``keys`` that exist, as :meth:`get_many`."""
        ops, results = self._reads(keys)
        return c.entries_from(ops, results) if ops else {}

    def set_many(
        self,
        mapping: Mapping[str, Any],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Set every key of ``mapping`` atomically, in one round trip; returns the version.

        Atomic means at most 1,000 keys (:class:`~botwire.InvalidArgument` above, before any
        I/O): split larger mappings yourself. ``idempotency_key``: as for :meth:`append`.
        """
        ops = c.set_many_ops(self.namespace, mapping, ttl)
        if not ops:
            return 0
        c.check_atomic_size(self.namespace, ops, "set_many")
        results = self._batch(ops, idempotency_key)
        return max(r["version"] for r in results)

    def delete_many(self, keys: Iterable[str], *, idempotency_key: str | None = None) -> int:
        """Delete ``keys``; returns how many existed. Up to 1,000 keys in one atomic round trip;
        more are deleted 1,000 at a time (each slice atomic). ``idempotency_key``: as for
        :meth:`append` (each slice records ``<key>:<i>/<n>``)."""
        ops = [c.op_delete(self.namespace, k) for k in keys]
        if not ops:
            return 0
        parts = c.chunks(ops)
        ikeys = c.chunk_keys(c.check_idempotency_key(self.namespace, idempotency_key), len(parts))
        return sum(
            bool(r["deleted"])
            for part, ikey in zip(parts, ikeys, strict=True)
            for r in self._batch(part, ikey)
        )

    def atomic(self, *, idempotency_key: str | None = None) -> Transaction:
        """A builder of checks and writes that commit all together or not at all (at most
        1,000 ops). ``idempotency_key`` (or ``commit(idempotency_key=)``): as for
        :meth:`append`."""
        from ._atomic import Transaction  # on first use: one module less on a cold start

        return Transaction(self, idempotency_key)

    # -- listing and the namespace -------------------------------------------------------------

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in UTF-8 byte order, following every page."""
        if prefix:
            c.check_key(prefix, self.namespace)
        cursor: str | None = None
        while True:
            page = self._store.list_keys(self.namespace, prefix=prefix, cursor=cursor)
            for info in page.keys:
                yield info.key
            if page.cursor is None:
                return
            cursor = page.cursor

    def list(self, prefix: str = "") -> list[str]:
        """All keys starting with ``prefix``, in UTF-8 byte order."""
        return list(self.iter_keys(prefix))

    def keys(self) -> list[str]:  # type: ignore[override]
        """All keys, in UTF-8 byte order."""
        return self.list()

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        """All ``(key, value)`` pairs, fetched a page at a time."""
        out: list[tuple[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self._store.list_keys(self.namespace, cursor=cursor)
            values = self.get_many(info.key for info in page.keys)
            out.extend((info.key, values[info.key]) for info in page.keys if info.key in values)
            if page.cursor is None:
                return out
            cursor = page.cursor

    def values(self) -> list[Any]:  # type: ignore[override]
        return [v for _, v in self.items()]

    def clear(self) -> int:
        """Delete every key of the namespace; returns how many there were."""
        return self._store.clear(self.namespace)

    def usage(self) -> Usage:
        """Keys, bytes and writes today, with the limits in force."""
        return self._store.usage(self.namespace)

    # -- MutableMapping ------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        entry = self.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        # Existence, not truthiness: a stored None or [] is "in". Lists no value.
        if not isinstance(key, str):
            return False
        c.check_key(key, self.namespace)
        page = self._store.list_keys(self.namespace, prefix=key, limit=1)
        return bool(page.keys) and page.keys[0].key == key

    def __iter__(self) -> Iterator[str]:
        return self.iter_keys()

    def __len__(self) -> int:
        return self.usage().keys

    def __bool__(self) -> bool:
        return True  # a Memory is a handle, truthy even when its namespace is empty

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release this handle; the shared connection closes with its last user."""
        if self._closed:
            return
        self._closed = True
        self._store = c.ClosedStore("Memory", self.namespace)  # type: ignore[assignment]
        if self._settings is not None:
            store = release(self._settings, False)
            if store is not None:
                store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._settings.url if self._settings is not None else repr(self._store)
        return f"Memory({self.namespace!r}, backend={where!r})"

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other
