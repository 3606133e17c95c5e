"""What the conformance cases run against: a *backend* hands out ``Memory``/``AsyncMemory``
handles on a namespace and moves the store's clock (TTL cases never sleep).

:class:`StoreBackend` makes one of a :class:`~botwire.store.Store` of your own; botwire's own
suite passes backends of the same shape over real servers (``tests/support/backends.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .._clock import TestingClock

if TYPE_CHECKING:
    from .._async import AsyncMemory
    from .._memory import Memory
    from .._types import Limits
    from ..store import AsyncStore, Store

__all__ = ["Backend", "Clock", "StoreBackend"]


#: Real time plus an offset a test moves forward (never back): give it to your store as its
#: clock (``SQLiteStore(path, clock=clock)``) so TTL cases expire entries without sleeping.
#: The same class as the server's ``--testing-clock`` (one definition, ``botwire._clock``).
Clock = TestingClock


@runtime_checkable
class Backend(Protocol):
    """A store under test, as the conformance cases reach it.

    ``limits`` are the :class:`~botwire.Limits` the store enforces (``None``: none declared,
    and the limit cases are reported not applicable). ``store`` is the sync store itself, or
    ``None`` when it is out of reach (behind a server): the protocol and capability cases then
    do not apply."""

    name: str
    limits: Limits | None
    store: Store | None

    def memory(self, namespace: str) -> Memory: ...

    def amemory(self, namespace: str) -> AsyncMemory: ...

    def advance(self, seconds: float) -> None: ...

    def close(self) -> None: ...


class StoreBackend:
    """A :class:`Backend` over a sync store: ``Memory(ns, store=store)``, and ``AsyncMemory``
    over ``async_store`` or, by default, the sync store run in a worker thread."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        limits: Limits | None = None,
        async_store: AsyncStore | None = None,
        name: str | None = None,
        owned: bool = True,
    ) -> None:
        self.store: Store | None = store
        self._store = store
        self.clock = clock
        self.limits = limits
        self._async_store = async_store
        self.name = name or type(store).__name__
        self._owned = owned

    def memory(self, namespace: str) -> Memory:
        from .._memory import Memory

        return Memory(namespace, store=self._store)

    def amemory(self, namespace: str) -> AsyncMemory:
        from .._async import AsyncMemory
        from ..backends._threaded import ThreadedAsyncStore

        store = self._async_store or ThreadedAsyncStore(self._store, owned=False)
        return AsyncMemory(namespace, store=store)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        if self._owned:
            self._store.close()

    def __repr__(self) -> str:
        return f"StoreBackend({self._store!r})"
