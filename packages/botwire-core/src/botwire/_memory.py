"""``Memory``: a persistent dictionary for one namespace (its commands: :mod:`._commands`)."""

from __future__ import annotations

import time
from _collections_abc import MutableMapping  # not collections.abc: it imports collections

from . import _common as c
from ._commands import Commands, SyncRun
from ._config import Settings, acquire_store, release, resolve

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from ._async import AsyncMemory
    from ._atomic import Transaction
    from .store import Store

__all__ = ["Memory"]


class Memory(Commands, SyncRun, MutableMapping[str, "Any"]):  # type: ignore[misc]
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
    connection, so creating one per invocation is cheap. Every command is a plain call here and
    a coroutine on :class:`~botwire.AsyncMemory`: both run the one definition in
    ``botwire/_commands.py``.
    """

    _sleep = staticmethod(time.sleep)

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

    def atomic(self, *, idempotency_key: str | None = None) -> Transaction:
        """A builder of checks and writes that commit all together or not at all (at most
        1,000 ops). ``idempotency_key`` (or ``commit(idempotency_key=)``): as for
        :meth:`append`."""
        from ._atomic import Transaction  # on first use: one module less on a cold start

        return Transaction(self, idempotency_key)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in UTF-8 byte order, following every page."""
        keys, cursor = self._keys_page(prefix, None)
        yield from keys
        while cursor is not None:
            keys, cursor = self._keys_page(prefix, cursor)
            yield from keys

    # -- MutableMapping ------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        """``memory[key]``: the value, or ``KeyError`` when absent or expired."""
        entry = self.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __setitem__(self, key: str, value: Any) -> None:
        """``memory[key] = value``: :meth:`set` without conditions."""
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        """``del memory[key]``: :meth:`delete`, or ``KeyError`` when absent."""
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        """``key in memory``: existence, not truthiness (a stored ``None`` or ``[]`` is in)."""
        return isinstance(key, str) and self.contains(key)

    def __iter__(self) -> Iterator[str]:
        """``iter(memory)``: :meth:`iter_keys`."""
        return self.iter_keys()

    def __len__(self) -> int:
        """``len(memory)``: the namespace's key count (from :meth:`usage`)."""
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

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other
