"""How the async handlers call the synchronous store: inline or in the worker-thread pool.

Measured (``benchmarks/server_rps.py``): one SQLiteStore serializes every call behind its lock,
so calling it inline on the event loop avoids a thread hop per request and is faster. A network
database (PostgreSQL) must never block the loop: its writes go through ``anyio.to_thread``, and
its single-key reads through the store's async reader (``PostgresStore.async_reader``), which
runs them on the loop itself with an async driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from botwire import (
    BotWireError,
    Changes,
    Entry,
    InvalidArgument,
    Policy,
    StorageFull,
    Unavailable,
    Usage,
)
from botwire._codec import dumps
from botwire.store import KeyPage, Op, Store
from botwire.store._sql import JSONEntry

__all__ = ["AsyncReader", "StoreRunner"]

T = TypeVar("T")
#: A GET whose stored JSON is larger is read in a worker thread even for an inline store.
LARGE_READ = 1 << 20
#: A GET with ``?tail=`` up to this many items is small enough to read inline.
LONG_LIST_ITEMS = 1000
log = logging.getLogger("botwire_server.store")


class AsyncReader(Protocol):
    """Reads of single keys on the event loop, offered by a store as ``async_reader()``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None: ...

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None: ...


class StoreRunner:
    """Async facade over a sync :class:`~botwire.store.Store`.

    Example::

        runner = StoreRunner(SQLiteStore("x.db"), inline=True)
        entry = await runner.get("user-42", "profile")
    """

    def __init__(
        self,
        store: Store,
        *,
        inline: bool,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.store = store
        self.inline = inline
        self.on_error = on_error
        self.reader: AsyncReader | None = None
        self._sweeper: asyncio.Task[None] | None = None
        #: Called with a namespace after a write to it committed (the watch hub's ``written``)
        self.on_write: Callable[[str], None] | None = None

    async def open(self) -> None:
        """Open the store's async reader, if it has one; call it inside the server's loop."""
        make = getattr(self.store, "async_reader", None)
        if make is not None and not self.inline:
            reader: AsyncReader = make()
            await reader.open()
            self.reader = reader

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._run(False, fn, *args, **kwargs)

    async def _run(self, heavy: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` inline or in a worker thread; a ``heavy`` call (one that may touch a long
        list's rows) always in a thread, so an inline store does not stall the loop (issue 13:
        a 100k-item trim held it 675 ms, a delete 190 ms, a 15 MB GET 547 ms)."""
        try:
            if self.inline and not heavy:
                return fn(*args, **kwargs)
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            failure = self._failure(exc, getattr(fn, "__name__", fn))
            if failure is exc:
                raise
            raise failure from exc

    async def _await(self, name: str, call: Awaitable[T]) -> T:
        """``call`` (an async reader's), its failures handled as :meth:`_call`'s."""
        try:
            return await call
        except Exception as exc:
            failure = self._failure(exc, name)
            if failure is exc:
                raise
            raise failure from exc

    def _failure(self, exc: Exception, name: object) -> BotWireError:
        """What a failed store call raises: a :class:`BotWireError` as it is, anything else
        (database or I/O failures, bugs) logged with its traceback as 503 "unavailable",
        which the client's retry policy covers. Unavailability is counted (``on_error``)."""
        if isinstance(exc, BotWireError):
            # A full disk is counted too: it is what an operator must be alerted to.
            if isinstance(exc, (Unavailable, StorageFull)) and self.on_error is not None:
                self.on_error(exc)
            return exc
        log.error("store call %s failed", name, exc_info=exc)
        if self.on_error is not None:
            self.on_error(exc)
        return Unavailable(f"botwire: the store failed ({type(exc).__name__}); retry later.")

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        if self.reader is not None:
            return await self._await("get", self.reader.get(namespace, key, tail=tail))
        return await self._call(self.store.get, namespace, key, tail=tail)

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None:
        """The entry with its value as JSON text, for splicing into a response; a store
        without ``get_json`` is read with ``get`` and the value encoded here."""
        if self.reader is not None:
            return await self._await("get_json", self.reader.get_json(namespace, key, tail=tail))
        get_json = getattr(self.store, "get_json", None)
        if get_json is not None:
            heavy = False
            if self.inline and (tail is None or tail > LONG_LIST_ITEMS):
                heavy = (await self.stored_bytes(namespace, [key]) or 0) > LARGE_READ
            return await self._run(heavy, get_json, namespace, key, tail=tail)
        entry = await self.get(namespace, key, tail=tail)
        if entry is None:
            return None
        return (
            dumps(entry.value),
            entry.version,
            entry.created_at,
            entry.updated_at,
            entry.expires_at,
        )

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        # deletes, sets (over a list) and trims may remove a whole list's rows
        heavy = self.inline and any(
            op.kind in ("delete", "set") or (op.kind == "append" and op.max_len is not None)
            for op in ops
        )
        try:
            results = await self._run(
                heavy,
                self.store.batch,
                namespace,
                ops,
                atomic=atomic,
                idempotency_key=idempotency_key,
            )
        finally:
            self._sweep_later()
        if self.on_write is not None and any(op.mutates for op in ops):
            self.on_write(namespace)  # committed: wake its watchers
        return results

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
                    await anyio.to_thread.run_sync(self.store.sweep)  # type: ignore[attr-defined]
                except Exception as exc:  # housekeeping sweeps again later
                    self._failure(exc, "sweep")
                    return

        self._sweeper = asyncio.get_running_loop().create_task(sweep())

    async def read_batch_json(
        self, namespace: str, ops: Sequence[Op], *, large: bool = False
    ) -> list[str] | None:
        """A batch of gets as JSON texts (values not decoded), or ``None`` when the store
        cannot (then :meth:`batch` answers it). A ``large`` one (megabytes) runs in a worker
        thread even for an inline store, so the event loop keeps serving meanwhile."""
        read = getattr(self.store, "read_batch_json", None)
        if read is None:
            return None
        if large and self.inline:
            try:
                texts: list[str] = await anyio.to_thread.run_sync(
                    functools.partial(read, namespace, ops)
                )
            except Exception as exc:
                failure = self._failure(exc, "read_batch_json")
                if failure is exc:
                    raise
                raise failure from exc
            return texts
        texts = await self._call(read, namespace, ops)
        return texts

    async def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]] | None:
        """The most recently updated keys, or ``None`` when the store cannot list them so."""
        recent = getattr(self.store, "recent_keys", None)
        if recent is None:
            return None
        rows: list[tuple[str, int, float]] = await self._call(recent, namespace, limit)
        return rows

    async def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int | None:
        """JSON bytes reading ``keys`` would return, or ``None`` when the store cannot tell."""
        size = getattr(self.store, "stored_bytes", None)
        if size is None:
            return None
        total: int = await self._call(size, namespace, keys)
        return total

    async def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        return await self._call(
            self.store.list_keys, namespace, prefix=prefix, cursor=cursor, limit=limit
        )

    async def clear(self, namespace: str) -> int:
        try:
            cleared = await self._run(True, self.store.clear, namespace)
        finally:
            self._sweep_later()
        if self.on_write is not None and cleared:
            self.on_write(namespace)
        return cleared

    async def changes(
        self, namespace: str, *, prefix: str, after: int | None, limit: int
    ) -> Changes:
        """The store's ``changes`` without waiting (the route waits, woken by the watch hub);
        400 for a store without the capability."""
        changes = getattr(self.store, "changes", None)
        if changes is None:
            raise InvalidArgument(
                f"botwire: this server's store ({type(self.store).__name__}) cannot report "
                f"changes (no SupportsChanges), so namespace {namespace!r} cannot be watched.",
                namespace=namespace,
            )
        found: Changes = await self._call(
            changes, namespace, prefix=prefix, after=after, limit=limit
        )
        return found

    async def usage(self, namespace: str) -> Usage:
        try:
            return await self._call(self.store.usage, namespace)
        finally:
            self._sweep_later()  # its purge of expired entries may leave a long list's rows

    def _policy_store(self, namespace: str) -> Any:
        """The store, if it offers ``SupportsPolicy`` (probed by ``get_policy``)."""
        if getattr(self.store, "get_policy", None) is None:  # SupportsPolicy's default
            raise InvalidArgument(
                f"botwire: this server's store ({type(self.store).__name__}) has no retention "
                f"policies (SupportsPolicy), so namespace {namespace!r} has none to read or "
                "set; use the SQLite or PostgreSQL store.",
                namespace=namespace,
            )
        return self.store

    async def get_policy(self, namespace: str) -> Policy:
        policy: Policy = await self._call(self._policy_store(namespace).get_policy, namespace)
        return policy

    async def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        store = self._policy_store(namespace)
        policy: Policy = await self._call(store.set_policy, namespace, changes)
        return policy

    async def ping(self) -> None:
        """Raise :class:`~botwire.Unavailable` unless the store answers (``/readyz``)."""
        ping = getattr(self.store, "ping", None)
        if ping is not None:
            await self._call(ping)
        else:
            await self._call(self.store.get, "botwire-readyz", "ping")

    async def housekeeping(self) -> int:
        """Purge expired entries and forget idempotency records older than a day."""
        purge = getattr(self.store, "purge_expired", None)
        if purge is None:
            return 0
        # Housekeeping may take a while; keep it off the loop even for SQLite.
        return int(await anyio.to_thread.run_sync(purge))

    async def close(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            with contextlib.suppress(Exception):
                await sweeper  # one chunk at most is left to finish (the rest: next start)
        reader, self.reader = self.reader, None
        try:
            if reader is not None:
                await reader.close()
        finally:
            await anyio.to_thread.run_sync(self.store.close)
