"""``Memory``: a persistent dictionary for one namespace, and every client command, written
once for ``Memory`` and ``AsyncMemory``.

A command is a sans-I/O generator that checks its arguments, builds ops through
:mod:`botwire._common` and *yields* each store call (``entry = yield self._store.get(ns, key)``).
A :class:`SyncRun` class's runner sends the (already computed) answer straight back; an
:class:`AsyncRun` class's runner, a coroutine, awaits the yielded awaitable and sends the answer
back (or throws the exception in). At class creation each class gets one real function per
command; :data:`command` types it for checkers (a plain call on a ``SyncRun``, a coroutine on an
``AsyncRun``). docs/design.md, section 3, tells the whole story and its measured costs. The
commands live here, beside ``Memory``: every module costs a cold start its import (~0.2 ms).
"""

from __future__ import annotations

import time
from _collections_abc import (
    Awaitable,
    MutableMapping,
)  # not collections.abc: it imports collections

from . import _common as c
from ._config import Settings, acquire_store, release, resolve
from ._errors import Conflict
from ._policy import PolicyCommands
from ._watch import WatchCommands

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator, Mapping
    from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

    from ._async import AsyncMemory
    from ._atomic import Transaction
    from ._lease import Lease, LeaseBase
    from ._queue import Queue
    from ._types import Entry, Usage
    from .store import AsyncStore, Store

    P = ParamSpec("P")
    T = TypeVar("T")
    Returns = Generator[Any, Any, T]  # a command: yields store calls, gets answers, returns T

    class command(Generic[P, T]):  # lower case: a decorator
        """Types a command: a plain call on a :class:`SyncRun`, a coroutine on an AsyncRun."""

        def __init__(self, fn: Callable[Concatenate[Any, P], Returns[T]]) -> None: ...
        def __call__(self, obj: Any, *args: P.args, **kwargs: P.kwargs) -> Returns[T]: ...
        @overload
        def __get__(self, obj: None, owner: type) -> Self: ...
        @overload
        def __get__(self, obj: SyncRun, owner: type | None = None) -> Callable[P, T]: ...
        @overload
        def __get__(
            self, obj: AsyncRun, owner: type | None = None
        ) -> Callable[P, Coroutine[Any, Any, T]]: ...
        def __get__(self, obj: object, owner: type | None = None) -> Any: ...

else:

    def command(fn):
        """Mark ``fn`` (a generator function) as a command: see the module's docstring."""
        fn._botwire_command = True
        return fn


__all__ = ["AsyncRun", "Commands", "Memory", "SyncRun", "command"]


def _install(cls: type, wrap: Any) -> None:
    """Give ``cls`` a runner for every command it resolves to that has none yet (a subclass
    keeps its own overrides and its base's runners)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("botwire"):
            continue  # commands live in botwire's modules; object and the ABCs have none
        for name, fn in vars(klass).items():
            if getattr(fn, "_botwire_command", False) and getattr(cls, name) is fn:
                method = wrap(fn)
                method.__name__ = name
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                method.__module__ = cls.__module__
                method.__doc__ = fn.__doc__
                method.__wrapped__ = fn  # inspect.signature() shows the command's parameters
                setattr(cls, name, method)


class SyncRun:
    """Base of a class whose commands are plain calls on a sync store."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install(cls, c.sync_method)


class AsyncRun:
    """Base of a class whose commands are coroutines awaiting an async store."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install(cls, c.async_method)


class Commands(PolicyCommands, WatchCommands):
    """The commands of ``Memory`` and ``AsyncMemory`` (each subclass adds a runner base);
    ``policy``/``set_policy`` come from ``_policy.PolicyCommands``, ``watch``/``watch_prefix``
    from ``_watch.WatchCommands``."""

    namespace: str
    _store: Any  # a Store for a SyncRun class, an AsyncStore for an AsyncRun one
    _settings: Settings | None
    _acquire: Callable[[Settings], Any]  # the shared backend for these settings
    # Waits the given seconds: yielded, so a SyncRun class sleeps (time.sleep) and an AsyncRun
    # one returns asyncio.sleep's coroutine for its runner to await.
    _sleep: Callable[[float], Any]

    # -- construction helpers ----------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The backend's URL (``http(s)://...`` or ``sqlite:///...``); ``None`` for a ``store=``."""
        return self._settings.url if self._settings is not None else None

    def __init__(
        self,
        namespace: str,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        keepalive_expiry: float | None = None,
        store: Store | AsyncStore | None = None,
    ) -> None:
        """A handle on ``namespace``; ``url``/``token``/``timeout``/``retries``/
        ``keepalive_expiry`` override ``BOTWIRE_*`` (see docs/client.md). ``store=`` takes a
        backend of your own instead: a :class:`~botwire.store.Store` for ``Memory``, an
        :class:`~botwire.store.AsyncStore` for ``AsyncMemory``."""
        self.namespace = c.check_namespace(namespace)
        self._settings = None
        if store is None:
            self._settings = resolve(url, token, timeout, retries, keepalive_expiry)
            store = self._acquire(self._settings)
        self._store = store
        self._closed = False

    def _same_backend(self) -> dict[str, Any]:
        """The arguments that open another handle on this one's backend and settings."""
        s = self._settings
        if s is None:
            return {"store": self._store}
        return {
            "url": s.url,
            "token": s.token,
            "timeout": s.timeout,
            "retries": s.retries,
            "keepalive_expiry": s.keepalive_expiry,
        }

    def with_namespace(self, namespace: str) -> Self:
        """Another namespace on the same backend and settings (sharing its connection)."""
        return type(self)(namespace, **self._same_backend())

    def __repr__(self) -> str:
        from ._config import shown_url  # loaded already; local: repr is rare

        s = self._settings
        where = shown_url(s.url) if s is not None else repr(self._store)
        return f"{type(self).__name__}({self.namespace!r}, backend={where!r})"

    # -- single keys ---------------------------------------------------------------------------

    @command
    def get(self, key: str, default: Any = None) -> Returns[Any]:
        """The value at ``key``, or ``default`` when it is absent or expired."""
        entry = yield self._store.get(self.namespace, c.check_key(key, self.namespace))
        return default if entry is None else entry.value

    @command
    def entry(self, key: str) -> Returns[Entry | None]:
        """The value with its version and times (an :class:`~botwire.Entry`), or ``None``."""
        entry: Entry | None = yield self._store.get(
            self.namespace, c.check_key(key, self.namespace)
        )
        return entry

    @command
    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        if_version: int | None = None,
        if_absent: bool = False,
        fence: LeaseBase | None = None,
    ) -> Returns[int]:
        """Store ``value``; returns the new version. ``ttl`` is in seconds (none: no expiry).

        ``if_version`` / ``if_absent`` make it a compare-and-set; a failed condition raises
        :class:`~botwire.Conflict` carrying the current version. ``fence=lease`` writes only
        while ``lease`` is held, else raises :class:`~botwire.LeaseLost` (here and in
        ``delete``, ``append``, ``pop``, ``incr``, ``set_many``, ``delete_many``).
        """
        op = c.op_set(
            self.namespace, key, value, ttl=ttl, if_version=if_version, if_absent=if_absent
        )
        results = yield from c.write(self, [op], None, fence, "set")
        version: int = results[0]["version"]
        return version

    @command
    def delete(
        self, key: str, *, if_version: int | None = None, fence: LeaseBase | None = None
    ) -> Returns[bool]:
        """Remove ``key``; returns whether it existed. Deleting twice is harmless."""
        op = c.op_delete(self.namespace, key, if_version=if_version)
        results = yield from c.write(self, [op], None, fence, "delete")
        deleted: bool = results[0]["deleted"]
        return deleted

    # -- lists and counters --------------------------------------------------------------------

    def _batch(self, ops: builtins.list[Any], idempotency_key: str | None) -> Any:
        """The store call of one atomic batch with the caller's idempotency key (checked before
        any I/O): yield it."""
        ikey = c.check_idempotency_key(self.namespace, idempotency_key)
        if ikey is None:
            return self._store.batch(self.namespace, ops)
        return self._store.batch(self.namespace, ops, idempotency_key=ikey)

    @command
    def append(
        self,
        key: str,
        *items: Any,
        max_len: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        fence: LeaseBase | None = None,
    ) -> Returns[int]:
        """Add ``items`` at the end of the list at ``key`` (created when absent), without
        reading or rewriting it; returns the new length. ``max_len`` drops the oldest items.

        ``idempotency_key`` (e.g. ``f"{context.aws_request_id}:history"``) makes a repeat of
        this call (a platform retrying the whole invocation) apply once and return the first
        result; it is scoped to the namespace and kept 24 h. See docs/client.md.
        """
        op = c.op_append(self.namespace, key, items, max_len=max_len, ttl=ttl)
        results = yield from c.write(self, [op], idempotency_key, fence, "append")
        length: int = results[0]["length"]
        return length

    @command
    def tail(self, key: str, n: int) -> Returns[builtins.list[Any]]:
        """The last ``n`` items of the list at ``key`` (``[]`` when absent)."""
        c.check_key(key, self.namespace)
        tail = c.check_tail(self.namespace, key, n)
        entry = yield self._store.get(self.namespace, key, tail=tail)
        return [] if entry is None else [*entry.value]

    @command
    def pop(
        self,
        key: str,
        default: Any = None,
        *,
        idempotency_key: str | None = None,
        fence: LeaseBase | None = None,
    ) -> Returns[Any]:
        """Remove and return the last item of the list at ``key`` (``default`` when empty).

        Note: unlike ``dict.pop`` this pops from the *list stored at* ``key``; use
        :meth:`delete` to remove a key. ``idempotency_key``: as for :meth:`append`.
        """
        ops = [c.op_pop(self.namespace, key)]
        results = yield from c.write(self, ops, idempotency_key, fence, "pop")
        return results[0]["value"] if results[0]["found"] else default

    @command
    def incr(
        self,
        key: str,
        by: int | float = 1,
        *,
        idempotency_key: str | None = None,
        fence: LeaseBase | None = None,
    ) -> Returns[int | float]:
        """Add ``by`` to the number at ``key`` atomically (absent counts as 0); returns the new
        number. ``idempotency_key``: as for :meth:`append`."""
        ops = [c.op_incr(self.namespace, key, by)]
        results = yield from c.write(self, ops, idempotency_key, fence, "incr")
        value: int | float = results[0]["value"]
        return value

    @command
    def update(
        self,
        /,  # as dict.update: update(self=1) sets the key "self"
        key: str | Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        fn: Callable[[Any], Any] | None = None,
        default: Any = None,
        *,
        ttl: float | None = None,
        **kwargs: Any,
    ) -> Returns[Any]:
        """Read-modify-write ``key`` with ``fn`` safely under concurrency; returns the new value.

        ``fn`` gets the current value (``default`` when absent) and returns the new one (on
        ``AsyncMemory`` it may be async); the write is conditional on the version read and
        retried on :class:`~botwire.Conflict`. Called like ``dict.update`` (a mapping and/or
        keywords, no ``fn``) it sets those keys atomically and returns ``None``.
        """
        if fn is None:
            if isinstance(key, str):
                raise TypeError(f"update({key!r}, fn): fn is required when key is a str")
            mapping = dict(key)
            mapping.update(kwargs)
            if mapping:
                yield from Commands.set_many(self, mapping)
            return None
        assert isinstance(key, str)
        for attempt in range(c.UPDATE_ATTEMPTS):
            current = yield from Commands.entry(self, key)
            new = fn(current.value if current is not None else default)
            if isinstance(new, Awaitable):
                new = yield new  # an async fn: awaited by AsyncMemory's runner
            try:
                if current is None:
                    yield from Commands.set(self, key, new, ttl=ttl, if_absent=True)
                else:
                    yield from Commands.set(self, key, new, ttl=ttl, if_version=current.version)
            except Conflict:
                yield self._sleep(c.update_backoff(attempt))
                continue
            return new
        raise c.update_conflict(self.namespace, key, c.UPDATE_ATTEMPTS)

    # -- several keys --------------------------------------------------------------------------

    def _reads(self, keys: Iterable[str]) -> Returns[tuple[builtins.list[Any], builtins.list[Any]]]:
        """``get`` ops for ``keys`` and their results, 1,000 keys per round trip."""
        ops = [c.op_get(self.namespace, k) for k in keys]  # every key checked before any I/O
        results: builtins.list[dict[str, Any]] = []
        if ops:
            for part in c.chunks(ops):
                results.extend((yield self._store.batch(self.namespace, part, atomic=True)))
        return ops, results

    @command
    def get_many(self, keys: Iterable[str]) -> Returns[dict[str, Any]]:
        """Values of the ``keys`` that exist: one round trip per 1,000 keys (each slice is read
        consistently; past 1,000 keys the slices are read one after another)."""
        ops, results = yield from self._reads(keys)
        return {op.key: r["value"] for op, r in zip(ops, results, strict=True) if r["found"]}

    @command
    def entries(self, keys: Iterable[str]) -> Returns[dict[str, Entry]]:
        """Entries (value, version, times) of the ``keys`` that exist, as :meth:`get_many`."""
        ops, results = yield from self._reads(keys)
        return c.entries_from(ops, results) if ops else {}

    @command
    def set_many(
        self,
        mapping: Mapping[str, Any],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        fence: LeaseBase | None = None,
    ) -> Returns[int]:
        """Set every key of ``mapping`` atomically, in one round trip; returns the version.

        Atomic means at most 1,000 keys (:class:`~botwire.InvalidArgument` above, before any
        I/O): split larger mappings yourself. ``idempotency_key``: as for :meth:`append`.
        """
        ops = c.set_many_ops(self.namespace, mapping, ttl)
        if not ops:
            return 0
        c.check_atomic_size(self.namespace, ops, "set_many")
        results = yield from c.write(self, ops, idempotency_key, fence, "set_many")
        version: int = max(r["version"] for r in results)
        return version

    @command
    def delete_many(
        self,
        keys: Iterable[str],
        *,
        idempotency_key: str | None = None,
        fence: LeaseBase | None = None,
    ) -> Returns[int]:
        """Delete ``keys``; returns how many existed. Up to 1,000 keys in one atomic round trip;
        more are deleted 1,000 at a time (each slice atomic, and fenced on its own with
        ``fence``: a :class:`~botwire.LeaseLost` then names the slices already deleted).
        ``idempotency_key``: as for :meth:`append` (each slice records ``<key>:<i>/<n>``)."""
        ops = [c.op_delete(self.namespace, k) for k in keys]
        if not ops:
            return 0
        parts = c.chunks(ops, c.BATCH_LIMIT - (fence is not None))  # room for the fence
        ikeys = c.chunk_keys(c.check_idempotency_key(self.namespace, idempotency_key), len(parts))
        deleted = done = 0
        for n, (part, ikey) in enumerate(zip(parts, ikeys, strict=True), 1):
            what = "delete_many"
            if done:  # a lost lease must not read as if nothing at all was deleted
                what = (
                    f"delete_many's slice {n} of {len(parts)} (its {done} keys before this "
                    "slice were deleted)"
                )
            results = yield from c.write(self, part, ikey, fence, what)
            deleted += sum(bool(r["deleted"]) for r in results)
            done += len(part)
        return deleted

    # -- listing and the namespace -------------------------------------------------------------

    @command
    def _keys_page(
        self, prefix: str, cursor: str | None
    ) -> Returns[tuple[builtins.list[str], str | None]]:
        """One page of keys starting with ``prefix`` and the cursor of the next (``None``: last);
        ``iter_keys`` of each class follows the pages."""
        if prefix and cursor is None:
            c.check_key(prefix, self.namespace)
        page = yield self._store.list_keys(self.namespace, prefix=prefix, cursor=cursor)
        return [info.key for info in page.keys], page.cursor

    @command
    def list(self, prefix: str = "") -> Returns[builtins.list[str]]:
        """All keys starting with ``prefix``, in UTF-8 byte order (every page followed)."""
        keys, cursor = yield from Commands._keys_page(self, prefix, None)
        while cursor is not None:
            more, cursor = yield from Commands._keys_page(self, prefix, cursor)
            keys += more
        return keys

    @command
    def keys(self) -> Returns[builtins.list[str]]:
        """All keys, in UTF-8 byte order."""
        return (yield from Commands.list(self))

    @command
    def items(self) -> Returns[builtins.list[tuple[str, Any]]]:
        """All ``(key, value)`` pairs, fetched a page at a time (a key deleted meanwhile is
        left out)."""
        out: builtins.list[tuple[str, Any]] = []
        keys, cursor = yield from Commands._keys_page(self, "", None)
        while True:
            values = yield from Commands.get_many(self, keys)
            out.extend((key, values[key]) for key in keys if key in values)
            if cursor is None:
                return out
            keys, cursor = yield from Commands._keys_page(self, "", cursor)

    @command
    def values(self) -> Returns[builtins.list[Any]]:
        """All values, in their keys' order, as :meth:`items`."""
        return [value for _, value in (yield from Commands.items(self))]

    @command
    def contains(self, key: str) -> Returns[bool]:
        """Whether ``key`` exists (``key in memory``; a stored ``None`` or ``[]`` exists too).
        Lists no value."""
        c.check_key(key, self.namespace)
        page = yield self._store.list_keys(self.namespace, prefix=key, limit=1)
        return bool(page.keys) and page.keys[0].key == key

    @command
    def clear(self) -> Returns[int]:
        """Delete every key of the namespace; returns how many there were."""
        cleared: int = yield self._store.clear(self.namespace)
        return cleared

    @command
    def usage(self) -> Returns[Usage]:
        """Keys, bytes and writes today, with the limits in force (a :class:`~botwire.Usage`)."""
        usage: Usage = yield self._store.usage(self.namespace)
        return usage


# clear/keys/items/values/update are the commands (clear returns the count, keys takes a prefix,
# update also takes fn=): deliberate, documented differences from MutableMapping's signatures.
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
    ``Commands`` above.
    """

    _acquire = staticmethod(acquire_store)
    _sleep = staticmethod(time.sleep)
    _store: Store

    def as_async(self) -> AsyncMemory:
        """An :class:`~botwire.AsyncMemory` for this namespace on the same backend."""
        from ._async import AsyncMemory

        if self._settings is None:
            from .backends._threaded import ThreadedAsyncStore

            return AsyncMemory(self.namespace, store=ThreadedAsyncStore(self._store, owned=False))
        return AsyncMemory(self.namespace, **self._same_backend())

    def atomic(self, *, idempotency_key: str | None = None) -> Transaction:
        """A builder of checks and writes that commit all together or not at all (at most
        1,000 ops). ``idempotency_key`` (or ``commit(idempotency_key=)``): as for
        :meth:`append`."""
        from ._atomic import Transaction  # on first use: one module less on a cold start

        return Transaction(self, idempotency_key)

    def lease(
        self, name: str, ttl: float = 30.0, *, holder: str | None = None, wait: float = 0.0
    ) -> Lease:
        """A lease ``name`` with a fencing token (``with`` acquires and releases it; see
        :class:`~botwire.Lease` and docs/coordination.md). Unacquired until then."""
        from ._lease import Lease  # on first use: one module less on a cold start

        return Lease(self, name, ttl, holder=holder, wait=wait)

    def queue(self, name: str, *, max_claims: int = 5) -> Queue:
        """The at-least-once hand-off queue ``name`` in this namespace (docs/coordination.md)."""
        from ._queue import Queue

        return Queue(self, name, max_claims=max_claims)

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
        self._store = c.ClosedStore("Memory", self.namespace)
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
