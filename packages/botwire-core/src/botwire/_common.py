"""Everything ``Memory`` and ``AsyncMemory`` share but I/O: argument checks, encoding values
into operations, and reading results back (sans-I/O, as in h11/httpx)."""

from __future__ import annotations

from _collections_abc import Mapping  # not collections.abc: it imports collections

from ._codec import encode
from ._errors import BotWireError, Closed, Conflict, InvalidArgument, error_from_payload
from ._names import check_key, check_namespace
from ._types import Entry, Op

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "BATCH_LIMIT",
    "RESERVED_PREFIX",
    "TTL_MAX",
    "UPDATE_ATTEMPTS",
    "ClosedStore",
    "async_method",
    "check_atomic_size",
    "check_idempotency_key",
    "check_key",
    "check_namespace",
    "check_tail",
    "chunk_keys",
    "chunks",
    "fence_failed",
    "fence_ops",
    "op_append",
    "op_check",
    "op_delete",
    "op_get",
    "op_incr",
    "op_pop",
    "op_set",
    "raise_first_error",
    "sync_method",
    "update_backoff",
    "update_conflict",
    "write",
]

UPDATE_ATTEMPTS = 64

#: Keys under this prefix hold what the client builds over plain keys (leases, queues: see
#: docs/coordination.md); they are ordinary keys (listed, counted, cleared) in the namespace.
RESERVED_PREFIX = ".botwire/"
# Ops per request/transaction: store/_sql.py MAX_BATCH_OPS (not imported: it loads sqlite-side
# modules; tests/client_http/policy checks the two agree).
BATCH_LIMIT = 1000
IDEMPOTENCY_KEY_MAX = 200  # the server takes 255; room for the ":2/3" of a split delete_many


def _finite(number: float) -> bool:
    """``math.isfinite`` without importing math (import time on a cold start); true for any int."""
    return number - number == 0  # inf - inf and nan - nan are nan


#: A TTL is below this many seconds (~317 years): past it a store's times lose their meaning.
TTL_MAX = 1e10


def _check_ttl(ns: str, key: str, ttl: Any) -> float | None:
    if ttl is None:
        return None
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not (_finite(ttl) and 0 < ttl < TTL_MAX)
    ):
        raise InvalidArgument(
            f"botwire: ttl={ttl!r} for key {key!r} in namespace {ns!r}; ttl is a number of "
            "seconds greater than 0 and below 1e10 (omit it for no expiry).",
            namespace=ns,
            key=key,
        )
    return float(ttl)


def _check_version(ns: str, key: str, version: Any) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidArgument(
            f"botwire: version {version!r} for key {key!r} in namespace {ns!r}; use the integer "
            "returned by set() or found in entry().version.",
            namespace=ns,
            key=key,
        )
    return version


def check_tail(ns: str, key: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidArgument(
            f"botwire: tail count {n!r} for key {key!r} in namespace {ns!r}; use an int >= 0.",
            namespace=ns,
            key=key,
        )
    return n


def check_max_len(ns: str, key: str, max_len: Any) -> int | None:
    """An append's ``max_len``: ``None`` or a whole number >= 1 (the client's check, repeated
    by the store's engine for requests that did not come through a client)."""
    if max_len is not None and (
        isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1
    ):
        raise InvalidArgument(
            f"botwire: max_len={max_len!r} for key {key!r} in namespace {ns!r}; use a whole "
            "number >= 1 (or omit it for an unbounded list).",
            namespace=ns,
            key=key,
        )
    return max_len


def check_incr_by(ns: str, key: str, by: Any) -> Any:
    """An incr's amount: a finite int or float, returned as it is (checked by the client and
    again by the store's engine)."""
    if isinstance(by, bool) or not isinstance(by, (int, float)) or not _finite(by):
        raise InvalidArgument(
            f"botwire: incr of key {key!r} in namespace {ns!r} by {by!r}; the amount must be a "
            "finite int or float.",
            namespace=ns,
            key=key,
        )
    return by


def op_get(ns: str, key: str) -> Op:
    return Op("get", check_key(key, ns))


def op_set(
    ns: str,
    key: str,
    value: Any,
    *,
    ttl: Any = None,
    if_version: Any = None,
    if_absent: bool = False,
) -> Op:
    check_key(key, ns)
    if if_absent and if_version is not None:
        raise InvalidArgument(
            f"botwire: set of key {key!r} in namespace {ns!r} got both if_absent and if_version; "
            "use one condition.",
            namespace=ns,
            key=key,
        )
    return Op(
        "set",
        key,
        value=encode(value, namespace=ns, key=key),
        ttl=_check_ttl(ns, key, ttl),
        if_version=_check_version(ns, key, if_version),
        if_absent=bool(if_absent),
    )


def op_delete(ns: str, key: str, *, if_version: Any = None) -> Op:
    check_key(key, ns)
    return Op("delete", key, if_version=_check_version(ns, key, if_version))


def op_append(
    ns: str, key: str, items: Iterable[Any], *, max_len: Any = None, ttl: Any = None
) -> Op:
    check_key(key, ns)
    max_len = check_max_len(ns, key, max_len)
    encoded = tuple(encode(item, namespace=ns, key=key) for item in items)
    return Op("append", key, items=encoded, max_len=max_len, ttl=_check_ttl(ns, key, ttl))


def op_incr(ns: str, key: str, by: Any) -> Op:
    check_key(key, ns)
    return Op("incr", key, by=check_incr_by(ns, key, by))


def op_pop(ns: str, key: str) -> Op:
    return Op("pop", check_key(key, ns))


def op_check(ns: str, key: str, version: Any) -> Op:
    check_key(key, ns)
    return Op("check", key, version=_check_version(ns, key, version))


def set_many_ops(ns: str, mapping: Mapping[str, Any], ttl: Any) -> list[Op]:
    if not isinstance(mapping, Mapping):
        raise InvalidArgument(
            f"botwire: set_many in namespace {ns!r} needs a mapping of key to value, got "
            f"{type(mapping).__name__}.",
            namespace=ns,
        )
    return [op_set(ns, k, v, ttl=ttl) for k, v in mapping.items()]


def entries_from(ops: list[Op], results: list[dict[str, Any]]) -> dict[str, Entry]:
    """``get`` batch results as entries of the keys that exist."""
    return {
        op.key: Entry(
            op.key, r["value"], r["version"], r["created_at"], r["updated_at"], r["expires_at"]
        )
        for op, r in zip(ops, results, strict=True)
        if r["found"]
    }


def raise_first_error(results: list[dict[str, Any]]) -> None:
    """Non-atomic batches report errors per op; surface the first as an exception."""
    for result in results:
        if "error" in result:
            raise error_from_payload(400, result)


def update_backoff(attempt: int) -> float:
    """Seconds to wait after ``update()``'s ``attempt``-th lost race (0-based): full jitter,
    1 ms doubling to at most 50 ms. Without it, writers that keep colliding retry in lockstep
    and one of them can lose every race (8 processes on one key starved a writer 64 times)."""
    import random  # only on contention: keeps it out of the import path

    return random.uniform(0.0, min(0.05, 0.001 * 2**attempt))


def update_conflict(ns: str, key: str, attempts: int) -> BotWireError:
    from ._errors import Conflict

    return Conflict(
        f"botwire: update() of key {key!r} in namespace {ns!r} lost the race {attempts} times "
        "in a row; another writer keeps changing it. Retry later or use incr()/append().",
        namespace=ns,
        key=key,
    )


def check_idempotency_key(ns: str, ikey: Any) -> str | None:
    """A caller's ``idempotency_key=``: ``None`` or 1-200 printable ASCII characters (it travels
    as an HTTP header, so no spaces' cousins like CR/LF)."""
    if ikey is None:
        return None
    if (
        not isinstance(ikey, str)
        or not 1 <= len(ikey) <= IDEMPOTENCY_KEY_MAX
        or not ikey.isascii()
        or not ikey.isprintable()
    ):
        raise InvalidArgument(
            f"botwire: idempotency_key={ikey!r} for namespace {ns!r}; use 1 to "
            f"{IDEMPOTENCY_KEY_MAX} printable ASCII characters that name this one call, e.g. "
            'f"{context.aws_request_id}:append-history" or a UUID.',
            namespace=ns,
        )
    return ikey


def chunks(ops: list[Op], size: int = BATCH_LIMIT) -> list[list[Op]]:
    """``ops`` in slices of at most ``size`` (one request/transaction each)."""
    return [ops[i : i + size] for i in range(0, len(ops), size)] or [[]]


def fence_ops(ns: str, fence: Any, ops: list[Op], what: str, token: int | None = None) -> list[Op]:
    """``ops`` fenced on a lease (``fence=lease``): the lease key's check first (at ``token``,
    by default the lease's), so the atomic batch writes nothing unless the lease key still has
    this holder's token. Refused before any I/O when the lease is another namespace's or is
    not held."""
    if getattr(fence, "namespace", None) != ns or not hasattr(fence, "_lost"):
        raise InvalidArgument(
            f"botwire: {what} in namespace {ns!r} got fence={fence!r}; a fence is a lease of "
            f"the same namespace: memory.lease(name) on Memory({ns!r}).",
            namespace=ns,
        )
    token = fence.token if token is None else token
    if token is None:
        raise fence._lost(what, None)
    fenced = [Op("check", fence.key, version=token), *ops]
    check_atomic_size(ns, fenced, f"{what} fenced on a lease")
    return fenced


#: Times a fenced write is sent again because the lease moved on to a newer token of the same
#: holder while it was in flight (a renew() on another thread or task); each needs a renewal
#: in between, so more than a few means a renew loop without pause.
FENCE_RESENDS = 8


def write(memory: Any, ops: list[Op], ikey: str | None, fence: Any, what: str) -> Any:
    """A command's write (``yield from`` it): the results of the atomic batch of ``ops``; with
    a ``fence``, the lease's check goes first (its result dropped) and its failure raises
    :class:`~botwire.LeaseLost`, unless this holder still holds the lease at a newer token
    (renewed meanwhile): then the batch goes again with that token."""
    if fence is None:
        return (yield memory._batch(ops, ikey))
    token = getattr(fence, "token", None)  # fence_ops refuses what is not a lease
    for _ in range(FENCE_RESENDS):
        fenced = fence_ops(memory.namespace, fence, ops, what, token)
        try:
            results = yield memory._batch(fenced, ikey)
        except Conflict as error:
            if not fence_failed(fence, error, fenced):
                raise
            sent = fenced[0].version
            token = yield from fence._moved_on(memory._store, sent)
            if token is None:
                raise fence._lost(what, sent) from error
            continue
        return results[1:]
    raise fence._lost(  # still ours, but renewed faster than a write can go through
        what,
        token,
        f"was renewed {FENCE_RESENDS} times while this write was in flight, so its check "
        "never held; nothing was written. Renew at most every few seconds (ttl / 3)",
    )


def fence_failed(fence: Any, error: Exception, ops: list[Op]) -> bool:
    """Whether a fenced batch's ``error`` is its lease's check failing (not the write's own
    condition); a store that does not name the key: by elimination."""
    key = getattr(error, "key", None)
    own = any(op.if_version is not None or op.if_absent or op.kind == "check" for op in ops[1:])
    return key == fence.key or (key is None and not own)


def chunk_keys(ikey: str | None, count: int) -> list[str | None]:
    """The idempotency key of each of ``count`` chunks: the caller's own for one chunk,
    ``<key>:<i>/<count>`` for several (each chunk is its own request, recorded on its own)."""
    if ikey is None or count == 1:
        return [ikey] * count
    return [f"{ikey}:{i}/{count}" for i in range(1, count + 1)]


def check_atomic_size(ns: str, ops: list[Op], what: str) -> None:
    """An atomic batch cannot be split: refuse it before any I/O when it is over the limit."""
    if len(ops) > BATCH_LIMIT:
        raise InvalidArgument(
            f"botwire: {what} in namespace {ns!r} has {len(ops)} operations; one atomic "
            f"transaction takes at most {BATCH_LIMIT}. It is all-or-nothing, so botwire will not "
            f"split it for you: split it into groups of at most {BATCH_LIMIT} (each atomic on "
            "its own), or keep related data under fewer keys.",
            namespace=ns,
        )


class ClosedStore:
    """Stands in for the backend of a closed ``Memory``/``AsyncMemory``: any use raises
    :class:`~botwire.Closed` (instead of whatever the released backend would raise, such as a
    raw ``sqlite3.ProgrammingError``)."""

    def __init__(self, kind: str, namespace: str) -> None:
        self._kind = kind
        self._namespace = namespace

    def __getattr__(self, name: str) -> Any:
        raise Closed(
            f"botwire: this {self._kind}({self._namespace!r}) is closed (close() was called or "
            f"its 'with' block ended); create a new {self._kind}({self._namespace!r}) to keep "
            "using the namespace. Nothing stored was affected.",
            namespace=self._namespace,
        )

    def __repr__(self) -> str:
        return "<closed>"


# -- the runners of commands (botwire/_memory.py: each class installs one per command) ----------


def sync_method(fn: Any) -> Any:
    """The plain method that runs command ``fn`` on a sync store (``_memory.SyncRun``)."""

    # self positional-only, here and in the command: update(self=1) is a key, as in dict.update
    def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        steps = fn(self, *args, **kwargs)
        try:
            answer = steps.send(None)
            while True:  # the store was called already: its answer goes straight back
                answer = steps.send(answer)
        except StopIteration as done:
            return done.value

    return method


def async_method(fn: Any) -> Any:
    """The coroutine method that runs command ``fn`` on an async store (``_memory.AsyncRun``)."""

    async def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        steps = fn(self, *args, **kwargs)
        try:
            call = steps.send(None)
            while True:
                try:
                    answer = await call
                except BaseException as exc:  # raised where the command yielded: it may catch it
                    call = steps.throw(exc)
                else:
                    call = steps.send(answer)
        except StopIteration as done:
            return done.value

    return method
