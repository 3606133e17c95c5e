"""The one runner of a sync :class:`~botwire.store.Store` from async code.

:class:`ThreadedAsyncStore` is ``AsyncMemory``'s embedded backend (every call in a worker thread,
so the event loop never blocks on SQLite's lock) and the base of the server's
``botwire_server.storage.StoreRunner``, which adds an ``inline`` store (calls on the loop: one
lock-serialized SQLiteStore is faster without a thread hop), error mapping to HTTP 503, anyio's
threads and an async reader. The rules live here once:

- a *heavy* call (one that may touch a long list's rows) always goes to a thread, even inline;
- rows a write left for later (:class:`~botwire.store.SupportsSweep`) are swept after it, in a
  thread, one sweeper at a time;
- every optional capability of :data:`botwire.store.OPTIONAL` is forwarded by name
  (``await runner.recent_keys(ns, 10)``, ``await runner.call("recent_keys", ns, 10,
  default=None)``): a new capability declared in ``store/_protocol.py`` needs no edit here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .._policy import policy_method
from .._types import Changes, Entry, KeyPage, Op, Policy, Usage
from .._watch import changes_method
from ..store import Store
from ..store._protocol import MEMBERS

__all__ = ["ThreadedAsyncStore", "heavy_ops"]

T = TypeVar("T")
_MISSING: Any = object()


def heavy_ops(ops: Sequence[Op]) -> bool:
    """Whether a batch may remove a whole list's rows: deletes, sets (over a list), trims."""
    return any(
        op.kind in ("delete", "set") or (op.kind == "append" and op.max_len is not None)
        for op in ops
    )


class ThreadedAsyncStore:
    """An :class:`~botwire.store.AsyncStore` around a sync :class:`~botwire.store.Store`.

    ``inline=True`` calls the store on the event loop, except heavy calls; ``owned=False``
    leaves the store open at :meth:`aclose` (it belongs to someone else, e.g. a ``Memory``).
    Subclasses change where threads come from (:meth:`_to_thread`) and what a failure
    becomes (:meth:`_failure`).

    Example::

        runner = ThreadedAsyncStore(SQLiteStore("x.db"))
        entry = await runner.get("user-42", "profile")
        recent = await runner.call("recent_keys", "user-42", 10, default=None)
    """

    def __init__(self, store: Store, *, owned: bool = True, inline: bool = False) -> None:
        self.store = store
        self.inline = inline
        self._owned = owned
        self._sweeper: asyncio.Task[None] | None = None

    # -- how a call runs -------------------------------------------------------------------

    async def _to_thread(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread (the server uses anyio's limited pool instead)."""
        return await asyncio.to_thread(fn)

    def _failure(self, exc: Exception, name: object) -> BaseException:
        """What a failed store call raises: here the store's own exception, unchanged."""
        return exc

    async def _run(self, heavy: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` inline (an inline store, a light call) or in a worker thread; a failure
        goes through :meth:`_failure`."""
        try:
            if self.inline and not heavy:
                return fn(*args, **kwargs)
            return await self._to_thread(functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            failure = self._failure(exc, getattr(fn, "__name__", fn))
            if failure is exc:
                raise
            raise failure from exc

    async def _await(self, name: str, call: Awaitable[T]) -> T:
        """``call`` (an async reader's), its failures handled as :meth:`_run`'s."""
        try:
            return await call
        except Exception as exc:
            failure = self._failure(exc, name)
            if failure is exc:
                raise
            raise failure from exc

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._run(False, fn, *args, **kwargs)

    # -- optional capabilities, by name ----------------------------------------------------

    def supports(self, name: str) -> bool:
        """Whether the store offers ``name``, a member of a declared optional capability."""
        if name not in MEMBERS:
            raise AttributeError(
                f"botwire: {name!r} is no optional store capability; declare it in "
                "botwire/store/_protocol.py OPTIONAL first."
            )
        return hasattr(self.store, name)

    async def call(self, name: str, *args: Any, default: Any = _MISSING, **kwargs: Any) -> Any:
        """The store's capability ``name`` called off the loop as a light call, or
        ``default`` when the store does not offer it (without a default: AttributeError)."""
        if not self.supports(name):
            if default is _MISSING:
                raise self._lacks(name)
            return default
        return await self._call(getattr(self.store, name), *args, **kwargs)

    def _lacks(self, name: str) -> AttributeError:
        return AttributeError(
            f"botwire: the store {type(self.store).__name__} does not offer {name!r} "
            f"(optional capability {MEMBERS[name]!r} of botwire.store.OPTIONAL); check "
            f"runner.supports({name!r}) or pass call(..., default=...)."
        )

    def __getattr__(self, name: str) -> Any:
        # Only for names not defined on the class: declared capabilities are forwarded.
        store = self.__dict__.get("store")
        if store is None or name not in MEMBERS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if not hasattr(store, name):
            raise self._lacks(name)
        attr = getattr(store, name)
        if not callable(attr):
            return attr  # a property (needs_sweep, engine): read as it is now

        async def forward(*args: Any, **kwargs: Any) -> Any:
            return await self._call(attr, *args, **kwargs)

        forward.__name__ = name
        return forward

    # -- the Store protocol ----------------------------------------------------------------

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        return await self._call(self.store.get, namespace, key, tail=tail)

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        try:
            return await self._run(
                self.inline and heavy_ops(ops),
                self.store.batch,
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=idempotency_key,
            )
        finally:
            self._sweep_later()

    async def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        return await self._call(
            self.store.list_keys, namespace, prefix=prefix, cursor=cursor, limit=limit
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
        changes = changes_method(self.store, namespace)
        # heavy: a wait blocks, and one version's group of keys may be large
        found: Changes = await self._run(
            True, changes, namespace, prefix=prefix, after=after, limit=limit, wait=wait
        )
        return found

    async def clear(self, namespace: str) -> int:
        try:
            return await self._run(True, self.store.clear, namespace)
        finally:
            self._sweep_later()

    async def usage(self, namespace: str) -> Usage:
        try:
            return await self._call(self.store.usage, namespace)
        finally:
            self._sweep_later()  # its purge of expired entries may leave a long list's rows

    def _sweep_later(self) -> None:
        """Start sweeping the rows a long list's trim or delete left (``store.sweep``, in
        chunks) in a worker thread, unless a sweep runs already; the request that left them
        is answered meanwhile, and other writers interleave with the chunks."""
        if not getattr(self.store, "needs_sweep", False):
            return
        if self._sweeper is not None and not self._sweeper.done():
            return  # it sweeps until nothing is left (it re-checks before it stops)

        async def sweep() -> None:
            while getattr(self.store, "needs_sweep", False):
                try:
                    await self._to_thread(self.store.sweep)  # type: ignore[attr-defined]
                except Exception as exc:  # housekeeping sweeps again later
                    self._failure(exc, "sweep")
                    return

        self._sweeper = asyncio.get_running_loop().create_task(sweep())

    async def get_policy(self, namespace: str) -> Policy:
        """The store's ``get_policy`` (``SupportsPolicy``); an error naming the store without."""
        policy: Policy = await self._call(
            policy_method(self.store, namespace, "get_policy"), namespace
        )
        return policy

    async def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        """The store's ``set_policy`` (``SupportsPolicy``); an error naming the store without."""
        policy: Policy = await self._call(
            policy_method(self.store, namespace, "set_policy"), namespace, changes
        )
        return policy

    async def aclose(self) -> None:
        """Let a running sweep finish its chunk, then close the store if it is ours."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            with contextlib.suppress(Exception):
                await sweeper  # one chunk at most is left to finish (the rest: next start)
        if self._owned:
            await self._to_thread(self.store.close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"
