"""The one storage protocol every backend implements (embedded SQLite, HTTP, PostgreSQL), and
the optional capabilities a server store may add.

:class:`Store` is what the client needs. The server (``botwire_server/storage/_runner.py`` and
``_open.py``) also probes a store for the capabilities in :data:`OPTIONAL`, each declared below
as a protocol of its own with what the server does without it (the default): a store of your
own needs only the six methods of :class:`Store` to be served, and gains speed or features for
each capability it adds. ``tests/server/test_store_protocol.py`` holds the server to this list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._types import Changes, Entry, KeyPage, Op, Policy, Usage

if TYPE_CHECKING:
    from ._sql import JSONEntry
    from ._wakeups import Wakeup

__all__ = [
    "MEMBERS",
    "OPTIONAL",
    "AsyncStore",
    "Store",
    "SupportsAsyncReader",
    "SupportsBatchGroup",
    "SupportsChanges",
    "SupportsGetJSON",
    "SupportsKeyedClear",
    "SupportsListLimits",
    "SupportsListNamespaces",
    "SupportsPing",
    "SupportsPolicy",
    "SupportsPurge",
    "SupportsReadBatchJSON",
    "SupportsRecentKeys",
    "SupportsStoredBytes",
    "SupportsSweep",
    "SupportsWakeups",
    "capabilities",
]


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


# -- optional capabilities of a server store ---------------------------------------------------


@runtime_checkable
class SupportsGetJSON(Protocol):
    """A GET answered with the stored JSON text spliced into the response, never decoded.

    Default: ``get``, and the server encodes the value again."""

    def get_json(self, namespace: str, key: str, *, tail: int | None = None) -> JSONEntry | None:
        """``(value_json, version, created_at, updated_at, expires_at)``, or ``None``."""
        ...


@runtime_checkable
class SupportsReadBatchJSON(Protocol):
    """A batch of gets answered as JSON texts, one per op, in one snapshot.

    Default: ``batch(..., atomic=True)``, its values decoded and encoded again."""

    def read_batch_json(self, namespace: str, ops: Sequence[Op]) -> list[str]:
        """Each ``get`` op's result (as :class:`Store.batch` gives it) as JSON text."""
        ...


@runtime_checkable
class SupportsRecentKeys(Protocol):
    """The namespace's most recently updated keys (the legacy ``/v0`` listing).

    Default: every page of ``list_keys`` is read and sorted by ``updated_at``."""

    def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]]:
        """``(key, bytes, updated_at)`` of at most ``limit`` keys, most recent first."""
        ...


@runtime_checkable
class SupportsListNamespaces(Protocol):
    """The namespaces holding keys, with their statistics (``GET /v1/namespaces``, the console).

    Default: the server answers ``GET /v1/namespaces`` with 400 ``invalid_argument`` (a store
    of six methods has no way to enumerate its namespaces)."""

    def list_namespaces(
        self, prefix: str = "", after: str | None = None, limit: int = 500
    ) -> list[tuple[str, int, int]]:
        """``(namespace, keys, bytes)`` of up to ``limit`` namespaces that hold keys, in byte
        order: only those starting with ``prefix``, and only those after ``after``."""
        ...


@runtime_checkable
class SupportsStoredBytes(Protocol):
    """The size of an answer before reading it, so a large one is read off the event loop.

    Default: sizes are unknown; reads are scheduled as small ones."""

    def stored_bytes(self, namespace: str, keys: Sequence[str]) -> int:
        """JSON bytes that reading ``keys`` would return."""
        ...


@runtime_checkable
class SupportsPing(Protocol):
    """A readiness check (``/readyz``).

    Default: a ``get`` of a key that does not exist."""

    def ping(self) -> None:
        """Return when the store can serve; raise :class:`~botwire.Unavailable` (or
        :class:`~botwire.StorageFull`) otherwise."""
        ...


@runtime_checkable
class SupportsPurge(Protocol):
    """Housekeeping: expired entries and day-old idempotency records deleted store-wide.

    Default: none (expired entries stay hidden from reads but keep their space)."""

    def purge_expired(self, *, max_batches: int | None = None) -> int:
        """Delete what has expired; returns how many entries went."""
        ...


@runtime_checkable
class SupportsSweep(Protocol):
    """Rows a write left for later (a long list's trim or delete) removed after the answer.

    Default: nothing is swept after a write (the store frees such rows in the write itself)."""

    @property
    def needs_sweep(self) -> bool:
        """Whether rows are waiting for :meth:`sweep`."""
        ...

    def sweep(self) -> int:
        """Remove waiting rows in short transactions; returns how many went."""
        ...


@runtime_checkable
class SupportsAsyncReader(Protocol):
    """Single-key reads on the server's event loop with an async driver (PostgreSQL).

    Default: reads call the sync store (inline or in a worker thread)."""

    def async_reader(self) -> Any:
        """An object with ``async open()``, ``close()``, ``get()`` and ``get_json()`` (as
        ``botwire_server.storage._runner.AsyncReader``); the server opens it in its loop."""
        ...


@runtime_checkable
class SupportsListLimits(Protocol):
    """The server's list limits enforced inside the write transaction.

    Default: the store applies none of its own (the server's other checks still hold)."""

    @property
    def engine(self) -> Any:
        """An object whose ``max_append_items``, ``max_list_length`` and ``max_list_bytes``
        the server sets (as :class:`~botwire.store.Engine` has)."""
        ...


@runtime_checkable
class SupportsPolicy(Protocol):
    """Per-namespace retention policies (issue 18): a default TTL, a maximum list length and a
    maximum idle age, enforced in the write transaction and by housekeeping (``purge_expired``).

    Default: no policies (``GET``/``PUT /v1/namespaces/{ns}/policy`` answer 400 naming the store,
    ``memory.policy()`` raises)."""

    def get_policy(self, namespace: str) -> Policy:
        """The policy in force for ``namespace`` (its own fields over the store's defaults)."""
        ...

    def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        """Change the fields in ``changes`` (``None``: follow the store's default; ``0``: none
        for this namespace), checked by ``botwire._policy.check_policy``; return the policy."""
        ...


@runtime_checkable
class SupportsChanges(Protocol):
    """What changed in a namespace since a version, deletions included (``watch``,
    ``watch_prefix``, ``GET /v1/namespaces/{ns}/changes``).

    Default: none (``/changes`` answers 400 ``invalid_argument`` and ``watch`` raises
    ``InvalidArgument``, both naming the store)."""

    def changes(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: int | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> Changes:
        """The latest state of each key under ``prefix`` changed after version ``after``
        (tombstones included, ascending version, coalesced, at most ``limit`` keys beyond one
        version's group), with the resume version; ``after=None``: the live entries and the
        current version. ``wait > 0`` blocks up to ``wait`` seconds for a change. A resume
        point older than the tombstone retention raises :class:`~botwire.Compacted`."""
        ...


@runtime_checkable
class SupportsBatchGroup(Protocol):
    """Group commit (issue 22): several callers' batches in one transaction and one commit, each
    in a savepoint of its own, so one caller's error undoes only its own changes.

    Default: every write is its own transaction (``batch``), committed before it is answered."""

    def batch_group(
        self, calls: Sequence[tuple[str, Sequence[Op], bool, str | None]], *, light: bool = False
    ) -> list[list[dict[str, Any]] | Exception]:
        """Apply ``(namespace, ops, atomic, idempotency_key)`` batches in order and commit them
        together; return each one's results or the :class:`~botwire.BotWireError` it raised.
        ``light`` (an inline server's loop): a batch that would drop a list's rows comes back
        as an exception to be run again off the loop, its changes undone."""
        ...


@runtime_checkable
class SupportsWakeups(Protocol):
    """Waiting for a namespace's changes without a thread or a poll per waiter: what
    ``AsyncMemory.watch`` on a store in its own process uses (``store/_wakeups.py``).

    Default: each waiting ``changes`` of ``AsyncMemory`` holds a thread of its own (at most
    ``WAIT_THREADS`` at once, ``backends/_threaded.py``)."""

    def wakeup(self, namespace: str, wake: Callable[[], object]) -> Wakeup:
        """Call ``wake()`` (from any thread, maybe more often than needed) whenever
        ``namespace`` may have changed, until the returned handle's ``cancel()``; its
        ``interval()`` is the longest a waiter may sleep before it re-reads anyway."""
        ...


@runtime_checkable
class SupportsKeyedClear(Protocol):
    """A ``clear(namespace, *, idempotency_key=None)`` that keeps its answer under the caller's
    idempotency key (the HTTP client sends one, the same on every retry; the clear drops every
    other record of the namespace), so a retry after a lost answer reports the count the clear
    deleted; a key used before for another request is refused (``InvalidArgument``).

    Default: the key is not passed; a retried clear reports what it finds (0)."""

    keys_clears: bool = True


#: Every capability the server probes a store for, by attribute name.
OPTIONAL: dict[str, type] = {
    "get_json": SupportsGetJSON,
    "read_batch_json": SupportsReadBatchJSON,
    "recent_keys": SupportsRecentKeys,
    "list_namespaces": SupportsListNamespaces,
    "stored_bytes": SupportsStoredBytes,
    "ping": SupportsPing,
    "purge_expired": SupportsPurge,
    "needs_sweep": SupportsSweep,
    "async_reader": SupportsAsyncReader,
    "engine": SupportsListLimits,
    "get_policy": SupportsPolicy,
    "changes": SupportsChanges,
    "batch_group": SupportsBatchGroup,
    "wakeup": SupportsWakeups,
    "keys_clears": SupportsKeyedClear,
}


#: Every attribute an optional capability declares, mapped to its capability's name in
#: :data:`OPTIONAL` (``"sweep"`` → ``"needs_sweep"``): what a runner forwards by name.
MEMBERS: dict[str, str] = {
    member: name
    for name, proto in OPTIONAL.items()
    for member in vars(proto)
    if not member.startswith("_")
}


def capabilities(store: object) -> frozenset[str]:
    """The optional capabilities ``store`` offers (names of :data:`OPTIONAL`)."""
    return frozenset(name for name, proto in OPTIONAL.items() if isinstance(store, proto))
