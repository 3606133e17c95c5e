"""How the async handlers call the synchronous store: inline or in the worker-thread pool.

:class:`StoreRunner` is core's one runner (``botwire.backends._threaded.ThreadedAsyncStore``:
inline or threaded calls, heavy calls kept off the loop, sweeping, optional capabilities
forwarded by name) with what a server adds: anyio's thread pool, failures mapped to 503
``unavailable`` and counted, PostgreSQL's async reader, and the declared defaults of the
capabilities the HTTP API uses.

Measured (``benchmarks/server_rps.py``): one SQLiteStore serializes every call behind its lock,
so calling it inline on the event loop avoids a thread hop per request and is faster. A network
database (PostgreSQL) must never block the loop: its single-key reads go through the store's
async reader (``PostgresStore.async_reader``), which runs them on the loop itself with an async
driver, and so do its writes (batches that mutate: the engine's plan, ``Engine.plan_apply``,
under ``_pg_write.drive_async``) when the store was opened with ``async_writes=True`` (the
server's default, ``storage/_open.py``); everything else goes through ``anyio.to_thread``.

Writes to a store offering ``batch_group`` (SQLite) are group-committed (``_group.WriteGroups``,
issue 22): the writes that reach the store together share one transaction and one ``COMMIT``,
each in its own savepoint, each answered after that COMMIT.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from botwire import BotWireError, Entry, InvalidArgument, Policy, StorageFull, Unavailable
from botwire._codec import dumps
from botwire.backends._threaded import ThreadedAsyncStore
from botwire.store import Op, Store
from botwire.store._sql import JSONEntry
from botwire.store._sqlitegroup import HeavyWrite

from ._group import WriteGroups

__all__ = ["AsyncReader", "StoreRunner"]

T = TypeVar("T")
#: A GET whose stored JSON is larger is read in a worker thread even for an inline store.
LARGE_READ = 1 << 20
#: A GET with ``?tail=`` up to this many items is small enough to read inline.
LONG_LIST_ITEMS = 1000
log = logging.getLogger("botwire_server.store")


def _groupable(ops: Sequence[Op], inline: bool) -> bool:
    """Whether a batch joins a write group: it writes, and (inline) it trims no list by its
    ``max_len`` (a long trim is a heavy call, run in a thread as before)."""
    if not any(op.mutates for op in ops):
        return False
    return not (inline and any(op.kind == "append" and op.max_len is not None for op in ops))


class AsyncReader(Protocol):
    """Reads of single keys on the event loop, offered by a store as ``async_reader()``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None: ...

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None: ...


class StoreRunner(ThreadedAsyncStore):
    """Async facade over a sync :class:`~botwire.store.Store`, as the server calls it.

    Example::

        runner = StoreRunner(SQLiteStore("x.db"), inline=True)
        entry = await runner.get("user-42", "profile")
        page = await runner.call("list_namespaces", "tenant-", None, 100, default=None)
    """

    def __init__(
        self,
        store: Store,
        *,
        inline: bool,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(store, owned=True, inline=inline)
        self.on_error = on_error
        self.reader: AsyncReader | None = None
        #: Called after a write committed with its namespace and the keys it named (``None``:
        #: any key, a ``clear``): the watch hub's ``written``
        self.on_write: Callable[[str, Collection[str] | None], None] | None = None
        #: Group commit of concurrent writes, for a store that offers it (SQLite's
        #: ``batch_group``): on the loop when inline, else one group at a time in a thread.
        run_group = getattr(store, "batch_group", None)
        self.groups: WriteGroups | None = None
        if run_group is not None:
            # inline: a write that would drop a list's rows comes back as HeavyWrite
            self.groups = WriteGroups(
                functools.partial(run_group, light=inline),
                to_thread=None if inline else self._to_thread,
            )

    async def open(self) -> None:
        """Open the store's async reader, if it has one; call it inside the server's loop."""
        make = getattr(self.store, "async_reader", None)
        if make is not None and not self.inline:
            reader: AsyncReader = make()
            await reader.open()
            self.reader = reader

    async def _to_thread(self, fn: Callable[[], T]) -> T:
        # anyio's pool is bounded (40 threads): a slow database queues calls, not threads.
        return await anyio.to_thread.run_sync(fn)

    def _failure(self, exc: Exception, name: object) -> BaseException:
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
        return await super().get(namespace, key, tail=tail)

    async def get_json(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> JSONEntry | None:
        """The entry with its value as JSON text, for splicing into a response; a store
        without ``get_json`` is read with ``get`` and the value encoded here."""
        if self.reader is not None:
            return await self._await("get_json", self.reader.get_json(namespace, key, tail=tail))
        if self.supports("get_json"):
            heavy = False
            if self.inline and (tail is None or tail > LONG_LIST_ITEMS):
                heavy = (await self.stored_bytes(namespace, [key]) or 0) > LARGE_READ
            store: Any = self.store  # offers get_json (checked above)
            found: JSONEntry | None = await self._run(
                heavy, store.get_json, namespace, key, tail=tail
            )
            return found
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
        mutates = any(op.mutates for op in ops)
        writer: Any = self.reader
        results: list[dict[str, Any]] | None = None
        if mutates and writer is not None and getattr(writer, "writes", False):
            # PostgreSQL: the engine's plan on the event loop (``_pg_async``), no thread
            results = await self._await(
                "batch",
                writer.batch(namespace, ops, atomic=atomic, idempotency_key=idempotency_key),
            )
        elif self.groups is not None and _groupable(ops, self.inline):
            try:
                results = await self.groups.batch(namespace, ops, atomic, idempotency_key)
            except HeavyWrite:  # it drops a list's rows: off the loop, as heavy_ops says
                results = None
            except Exception as exc:
                failure = self._failure(exc, "batch")
                if failure is exc:
                    raise
                raise failure from exc
            finally:
                self._sweep_later()
        if results is None:
            results = await super().batch(
                namespace, ops, atomic=atomic, idempotency_key=idempotency_key
            )
        if self.on_write is not None and (mutates or any(op.kind == "check" for op in ops)):
            # committed: wake its watchers, by every key an op names. A check, even in a batch
            # of checks alone, removes its key when it has expired: a tombstone, a change
            self.on_write(namespace, {op.key for op in ops})
        return results

    async def clear(self, namespace: str, *, idempotency_key: str | None = None) -> int:
        cleared = await super().clear(namespace, idempotency_key=idempotency_key)
        if self.on_write is not None and cleared:
            self.on_write(namespace, None)
        return cleared

    def _policy_store(self, namespace: str) -> Any:
        """The store, if it offers ``SupportsPolicy`` (probed by ``get_policy``): else 400."""
        if not self.supports("get_policy"):  # SupportsPolicy's default
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
        if self.on_write is not None:  # a lower max_list_len may have trimmed lists
            self.on_write(namespace, None)
        return policy

    async def read_batch_json(
        self, namespace: str, ops: Sequence[Op], *, large: bool = False
    ) -> list[str] | None:
        """A batch of gets as JSON texts (values not decoded), or ``None`` when the store
        cannot (then :meth:`batch` answers it). A ``large`` one (megabytes) runs in a worker
        thread even for an inline store, so the event loop keeps serving meanwhile."""
        reader: Any = self.reader
        if not large and reader is not None and hasattr(reader, "read_batch_json"):
            # PostgreSQL: whole-value gets in one statement on the event loop (``_pg_async``)
            found: list[str] | None = await self._await(
                "read_batch_json", reader.read_batch_json(namespace, ops)
            )
            if found is not None:
                return found
        if not self.supports("read_batch_json"):
            return None
        store: Any = self.store  # offers read_batch_json (checked above)
        texts: list[str] = await self._run(large, store.read_batch_json, namespace, ops)
        return texts

    async def read_batch_json_within(
        self, namespace: str, ops: Sequence[Op], budget: int
    ) -> tuple[int, list[str] | None] | None:
        """:meth:`read_batch_json` and :meth:`stored_bytes` in one statement, on the event loop
        (PostgreSQL's async reader): the bytes the gets answer, and their texts, or ``None``
        for them when over ``budget`` (nothing read). ``None`` when the store cannot; then the
        two are asked apart."""
        reader: Any = self.reader
        if reader is None or not hasattr(reader, "read_batch_json_within"):
            return None
        found: tuple[int, list[str] | None] | None = await self._await(
            "read_batch_json", reader.read_batch_json_within(namespace, ops, budget)
        )
        return found

    async def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]] | None:
        """The most recently updated keys, or ``None`` when the store cannot list them so."""
        rows: list[tuple[str, int, float]] | None = await self.call(
            "recent_keys", namespace, limit, default=None
        )
        return rows

    async def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int | None:
        """JSON bytes reading ``keys`` would return, or ``None`` when the store cannot tell;
        on the event loop when the store's async reader offers it (PostgreSQL)."""
        reader: Any = self.reader
        if reader is not None and hasattr(reader, "stored_bytes"):
            size: int = await self._await("stored_bytes", reader.stored_bytes(namespace, keys))
            return size
        total: int | None = await self.call("stored_bytes", namespace, keys, default=None)
        return total

    async def ping(self) -> None:
        """Raise :class:`~botwire.Unavailable` unless the store answers (``/readyz``)."""
        if self.supports("ping"):
            await self.call("ping")
        else:
            await self._call(self.store.get, "botwire-readyz", "ping")

    async def housekeeping(self) -> int:
        """Purge expired entries and forget idempotency records older than a day."""
        if not self.supports("purge_expired"):
            return 0
        # Housekeeping may take a while; keep it off the loop even for SQLite. Its failures
        # are the housekeeping loop's to count and log (app._housekeeping), not a request's.
        return int(await self._to_thread(self.store.purge_expired))  # type: ignore[attr-defined]

    async def close(self) -> None:
        """Close the async reader (if any), then the store (:meth:`aclose`)."""
        reader, self.reader = self.reader, None
        try:
            if reader is not None:
                await reader.close()
        finally:
            await self.aclose()
