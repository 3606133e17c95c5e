"""Sans-I/O plumbing: saver and store logic is written once as generators that *yield* requests
to botwire and receive the results; :func:`run_sync` drives one with a ``Memory`` and
:func:`run_async` with an ``AsyncMemory``. The logic never knows which one it talks to.

Example::

    def plan() -> Plan[int]:
        values = yield GetMany(("a", "b"))
        return len(values)

    run_sync(memory, plan())          # -> 0, 1 or 2
    await run_async(amemory, plan())  # same logic, natively async
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botwire import AsyncMemory, BotWireError, Memory

__all__ = [
    "MAX_BATCH",
    "Atomic",
    "DeleteMany",
    "Get",
    "GetEntry",
    "GetMany",
    "ListKeys",
    "Plan",
    "Request",
    "Tail",
    "TxOp",
    "get_many_chunked",
    "run_async",
    "run_sync",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Get:
    key: str


@dataclass(frozen=True)
class GetMany:
    keys: Sequence[str]


@dataclass(frozen=True)
class Tail:
    key: str
    n: int


@dataclass(frozen=True)
class ListKeys:
    prefix: str


@dataclass(frozen=True)
class GetEntry:
    key: str


@dataclass(frozen=True)
class DeleteMany:
    keys: Sequence[str]


# ("set", key, value, ttl_seconds) | ("append", key, items) | ("delete", key)
# | ("check", key, version_or_None)
TxOp = tuple[Any, ...]


@dataclass(frozen=True)
class Atomic:
    """One atomic batch. ``repeat_safe``: applying it twice is harmless to the readers (see
    ``Transaction.commit``), so it is sent without an Idempotency-Key and leaves no record."""

    ops: Sequence[TxOp]
    repeat_safe: bool = False


Request = Get | GetMany | GetEntry | Tail | ListKeys | DeleteMany | Atomic
Plan = Generator[Request, Any, T]


MAX_BATCH = 500  # keys per get_many / delete_many request


def get_many_chunked(keys: Sequence[str]) -> Plan[dict[str, Any]]:
    """``get_many`` of any number of keys, ``MAX_BATCH`` per round trip."""
    out: dict[str, Any] = {}
    for i in range(0, len(keys), MAX_BATCH):
        out.update((yield GetMany(keys[i : i + MAX_BATCH])))
    return out


def _fill(tx: Any, ops: Sequence[TxOp]) -> None:
    for op in ops:
        kind = op[0]
        if kind == "set":
            tx.set(op[1], op[2], ttl=op[3])
        elif kind == "append":
            tx.append(op[1], *op[2])
        elif kind == "delete":
            tx.delete(op[1])
        elif kind == "check":
            tx.check(op[1], op[2])
        else:  # pragma: no cover - programming error
            raise AssertionError(f"unknown transaction op {kind!r}")


def _exec_sync(m: Memory, req: Request) -> Any:
    if isinstance(req, Get):
        return m.get(req.key)
    if isinstance(req, GetMany):
        return m.get_many(list(req.keys)) if req.keys else {}
    if isinstance(req, GetEntry):
        return m.entry(req.key)
    if isinstance(req, Tail):
        return m.tail(req.key, req.n)
    if isinstance(req, ListKeys):
        return m.list(req.prefix)
    if isinstance(req, DeleteMany):
        return m.delete_many(list(req.keys)) if req.keys else 0
    if isinstance(req, Atomic):
        if not req.ops:
            return []
        tx = m.atomic()
        _fill(tx, req.ops)
        return tx.commit(repeat_safe=req.repeat_safe)
    raise AssertionError(f"unknown request {req!r}")  # pragma: no cover


async def _exec_async(m: AsyncMemory, req: Request) -> Any:
    if isinstance(req, Get):
        return await m.get(req.key)
    if isinstance(req, GetMany):
        return await m.get_many(list(req.keys)) if req.keys else {}
    if isinstance(req, GetEntry):
        return await m.entry(req.key)
    if isinstance(req, Tail):
        return await m.tail(req.key, req.n)
    if isinstance(req, ListKeys):
        return await m.list(req.prefix)
    if isinstance(req, DeleteMany):
        return await m.delete_many(list(req.keys)) if req.keys else 0
    if isinstance(req, Atomic):
        if not req.ops:
            return []
        tx = m.atomic()
        _fill(tx, req.ops)
        return await tx.commit(repeat_safe=req.repeat_safe)
    raise AssertionError(f"unknown request {req!r}")  # pragma: no cover


def run_sync(m: Memory, plan: Plan[T]) -> T:
    """Drive ``plan`` to completion with the synchronous client.

    A botwire error raised by a request is thrown into the plan, which may handle it (for
    instance retry after a ``Conflict``) or let it propagate.
    """
    try:
        req = next(plan)
        while True:
            try:
                result = _exec_sync(m, req)
            except BotWireError as exc:
                req = plan.throw(exc)
            else:
                req = plan.send(result)
    except StopIteration as done:
        value: T = done.value  # a Plan[T] returns a T (StopIteration.value is untyped)
        return value


async def run_async(m: AsyncMemory, plan: Plan[T]) -> T:
    """Drive ``plan`` to completion with the asynchronous client (same contract as
    :func:`run_sync`)."""
    try:
        req = next(plan)
        while True:
            try:
                result = await _exec_async(m, req)
            except BotWireError as exc:
                req = plan.throw(exc)
            else:
                req = plan.send(result)
    except StopIteration as done:
        value: T = done.value  # a Plan[T] returns a T (StopIteration.value is untyped)
        return value
