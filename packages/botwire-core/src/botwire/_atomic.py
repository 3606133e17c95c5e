"""``memory.atomic()``: checks and mutations committed all together or not at all."""

from __future__ import annotations

from . import _common as c
from ._errors import Conflict, InvalidArgument
from ._memory import AsyncRun, SyncRun, command
from ._types import Op

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any, Self

    from ._async import AsyncMemory
    from ._lease import LeaseBase
    from ._memory import Memory, Returns

__all__ = ["AsyncTransaction", "Transaction"]


class _Builder:
    """The ops of a transaction and its one commit (a plain call or a coroutine: see
    :mod:`._memory`)."""

    _memory: Any  # the Memory or AsyncMemory whose store commits

    def __init__(self, namespace: str, idempotency_key: str | None = None) -> None:
        self._ns = namespace
        self._ikey = c.check_idempotency_key(namespace, idempotency_key)
        self.ops: list[Op] = []
        self.committed = False
        self._fences: list[tuple[Any, int]] = []  # (lease, index of its check) for LeaseLost

    def _prepare(self, idempotency_key: str | None) -> str | None:
        """Mark committed, refuse more than one atomic transaction holds; the key to send."""
        self.committed = True
        ikey = c.check_idempotency_key(self._ns, idempotency_key) or self._ikey
        c.check_atomic_size(self._ns, self.ops, "an atomic() transaction")
        return ikey

    def check(self, key: str, version: int | None) -> Self:
        """Require ``key`` to be at ``version`` (``None``: to be absent) when committing."""
        self.ops.append(c.op_check(self._ns, key, version))
        return self

    def check_lease(self, lease: LeaseBase) -> Self:
        """Require ``lease`` to be still held by its holder (the lease key at its token) when
        committing: the fence of every op in this transaction. A failed check raises
        :class:`~botwire.LeaseLost` and applies nothing."""
        check = c.fence_ops(self._ns, lease, [], "atomic().check_lease()")[0]
        self._fences.append((lease, len(self.ops)))
        self.ops.append(check)
        return self

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> Self:
        """Set ``key`` to ``value`` (``ttl`` in seconds) when committing."""
        self.ops.append(c.op_set(self._ns, key, value, ttl=ttl))
        return self

    def delete(self, key: str) -> Self:
        """Delete ``key`` (absent or not) when committing; its result says whether it existed."""
        self.ops.append(c.op_delete(self._ns, key))
        return self

    def append(
        self, key: str, *items: Any, max_len: int | None = None, ttl: float | None = None
    ) -> Self:
        """Append ``items`` to the list at ``key`` when committing; its result is the length."""
        self.ops.append(c.op_append(self._ns, key, items, max_len=max_len, ttl=ttl))
        return self

    def incr(self, key: str, by: int | float = 1) -> Self:
        """Add ``by`` to the number at ``key`` when committing; its result is the number."""
        self.ops.append(c.op_incr(self._ns, key, by))
        return self

    def _outcomes(self, results: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for op, res in zip(self.ops, results, strict=True):
            if op.kind == "set":
                out.append(res["version"])
            elif op.kind == "delete":
                out.append(res["deleted"])
            elif op.kind == "append":
                out.append(res["length"])
            elif op.kind == "incr":
                out.append(res["value"])
            else:
                out.append(None)
        return out

    @command
    def commit(
        self, *, idempotency_key: str | None = None, repeat_safe: bool = False
    ) -> Returns[list[Any]]:
        """Apply every op at once; returns each op's result (version, deleted, length, value).

        ``idempotency_key`` (e.g. ``context.aws_request_id``): a repeat of this commit (a
        platform retrying the whole invocation) applies once and returns the first results.

        ``repeat_safe=True`` says applying these ops twice is harmless to whoever reads them
        (sets of the same values, appends the readers dedupe): the HTTP client then sends the
        commit without the ``Idempotency-Key`` it adds to every write, so the server keeps no
        record of it (one row less per commit, and its day of storage). A retry after a lost
        answer may apply it a second time. Not with ``idempotency_key``.
        """
        ikey = self._prepare(idempotency_key)
        if repeat_safe and ikey is not None:
            raise InvalidArgument(
                f"botwire: commit of namespace {self._ns!r} got both idempotency_key={ikey!r} "
                "and repeat_safe=True; a keyed commit applies once, an unkeyed repeat-safe one "
                "may apply twice. Pass one of them.",
                namespace=self._ns,
            )
        if not self.ops:
            return []
        store = self._memory._store
        for _ in range(c.FENCE_RESENDS):
            try:
                if ikey is not None:
                    results = yield store.batch(
                        self._ns, self.ops, atomic=True, idempotency_key=ikey
                    )
                elif repeat_safe and getattr(store, "keys_writes", False):
                    results = yield store.batch(self._ns, self.ops, atomic=True, repeat_safe=True)
                else:
                    results = yield store.batch(self._ns, self.ops, atomic=True)
            except Conflict as error:
                key = getattr(error, "key", None)
                failed = [(ls, i) for ls, i in self._fences if ls.key == key]
                if not failed:
                    raise
                lease, i = failed[0]
                sent = self.ops[i].version
                # Renewed by another thread or task meanwhile: the same holder, a newer token.
                token = yield from lease._moved_on(store, sent)
                if token is None:
                    raise lease._lost("atomic() commit", sent) from error
                self.ops[i] = c.fence_ops(self._ns, lease, [], "atomic() commit", token)[0]
                continue
            return self._outcomes(results)
        raise Conflict(
            f"botwire: commit of namespace {self._ns!r}: a lease it checks was renewed "
            f"{c.FENCE_RESENDS} times while the commit was in flight; nothing was written. "
            "Renew at most every few seconds (ttl / 3).",
            namespace=self._ns,
        )


class Transaction(_Builder, SyncRun):
    """All-or-nothing batch for :class:`~botwire.Memory` (``with``, or ``commit()``).

    Example::

        e = memory.entry("balance")
        with memory.atomic() as tx:
            tx.check("balance", e.version if e else None)
            tx.set("balance", 90).append("ledger", {"debit": 10})
        # committed on leaving the block; a failed check raises Conflict and applies nothing
    """

    def __init__(self, memory: Memory, idempotency_key: str | None = None) -> None:
        super().__init__(memory.namespace, idempotency_key)
        self._memory = memory

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and not self.committed:
            self.commit()


class AsyncTransaction(_Builder, AsyncRun):
    """All-or-nothing batch for :class:`~botwire.AsyncMemory` (``async with``, or
    ``await commit()``).

    Example::

        async with memory.atomic() as tx:
            tx.check("slot", None).set("slot", "taken")
        # committed on leaving the block; a failed check raises Conflict and applies nothing
    """

    def __init__(self, memory: AsyncMemory, idempotency_key: str | None = None) -> None:
        super().__init__(memory.namespace, idempotency_key)
        self._memory = memory

    async def __aenter__(self) -> AsyncTransaction:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and not self.committed:
            await self.commit()
