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
  default=None)``): a new capability declared in ``store/_protocol.py`` needs no edit here;
- a *waiting* ``changes`` (``watch``) on a store that offers wake-ups
  (:class:`~botwire.store.SupportsWakeups`: embedded SQLite, ``PostgresStore``) waits on the
  event loop: an ``asyncio.Event`` the store's poller or listener sets from its thread, each
  read in a worker thread. Measured, 300 such watches idle on embedded SQLite: 256 threads
  and 87% of a core before, no thread of their own and ~2% now (``store/_wakeups.py``). On
  any other store a waiting call holds its thread until a change or its end, so it runs in
  threads of its own (at most :data:`WAIT_THREADS`), never in the default executor's few
  (``min(32, CPUs + 4)``: 6 on a 2-CPU function) that every other call shares: there, as many
  waiting watches as threads held back every other call, and the write that would have woken
  them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .. import _fork
from .._policy import policy_method
from .._types import Changes, Entry, KeyPage, Op, Policy, Usage
from .._watch import changes_method
from ..store import Store
from ..store._protocol import MEMBERS
from ..store._wakeups import resume

__all__ = ["WAIT_THREADS", "ThreadedAsyncStore", "heavy_ops"]

T = TypeVar("T")
_MISSING: Any = object()
#: The most waiting ``changes`` calls that run at once, per process (more wait their turn).
WAIT_THREADS = 256


class _WaitThreads:
    """The executor of waiting ``changes`` calls: made on first use, and anew in a forked
    child (the parent's threads are not there; its executor would count them as idle)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        _fork.register(self)

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(WAIT_THREADS, "botwire-wait")
            return self._executor

    def _after_fork(self) -> None:
        if self._executor is not None:
            _fork.abandon(self._executor)
        self._lock = threading.Lock()
        self._executor = None


_WAITS = _WaitThreads()


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

    async def _to_wait_thread(self, fn: Callable[[], T]) -> T:
        """``fn()`` (a waiting call) in a thread of its own (module docstring)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # as asyncio.to_thread does
        return await loop.run_in_executor(_WAITS.get(), ctx.run, fn)

    async def _run(self, heavy: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` inline (an inline store, a light call) or in a worker thread; a failure
        goes through :meth:`_failure`."""
        thread = None if self.inline and not heavy else self._to_thread
        return await self._run_in(thread, fn, *args, **kwargs)

    async def _run_in(
        self,
        thread: Callable[[Callable[[], T]], Awaitable[T]] | None,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """``fn`` on the loop (``thread`` None) or through ``thread``; a failure goes through
        :meth:`_failure`."""
        try:
            if thread is None:
                return fn(*args, **kwargs)
            return await thread(functools.partial(fn, *args, **kwargs))
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
        waits = wait > 0 and after is not None
        wakeup = getattr(self.store, "wakeup", None) if waits else None
        if wakeup is not None:

            def read(since: int) -> Awaitable[Changes]:
                return self._run_in(
                    self._to_thread, changes, namespace, prefix=prefix, after=since, limit=limit
                )

            assert after is not None  # waits
            return await self._wait_on_loop(read, functools.partial(wakeup, namespace), wait, after)
        # in a thread: one version's group of keys may be large; a wait, in its own threads
        found: Changes = await self._run_in(
            self._to_wait_thread if waits else self._to_thread,
            changes,
            namespace,
            prefix=prefix,
            after=after,
            limit=limit,
            wait=wait,
        )
        return found

    async def _wait_on_loop(
        self,
        read: Callable[[int], Awaitable[Changes]],
        register: Callable[..., Any],
        wait: float,
        after: int,
    ) -> Changes:
        """A waiting ``changes`` on the event loop (module docstring): registered before the
        first read, the event cleared before each, so a commit after a read always wakes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        event = asyncio.Event()

        def wake() -> None:  # from the store's thread (or this loop's)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

        handle = register(wake)
        try:
            while True:
                event.clear()
                found = await read(after)
                left = deadline - loop.time()
                if found.entries or left <= 0:
                    return found
                after = resume(after, found)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(handle.interval(), left))
        finally:
            handle.cancel()

    async def clear(self, namespace: str, *, idempotency_key: str | None = None) -> int:
        """The store's ``clear``; ``idempotency_key`` goes to a store that records a clear's
        answer (``keys_clears``), else it is dropped (a clear applied twice is harmless)."""
        clear: Any = self.store.clear
        if idempotency_key is not None and getattr(self.store, "keys_clears", False):
            clear = functools.partial(clear, idempotency_key=idempotency_key)
        try:
            return await self._run(True, clear, namespace)
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
