"""Compare-and-set edits of a stored list (private).

Used only for operations that really remove items from the middle or the front of a
list (``delete_message(idx)``, ``delete_oldest_messages``): the edit is written
with ``if_version`` and retried on ``Conflict``, so a concurrent ``append`` is never
lost. Appends and ``pop`` never come through here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botwire import Conflict

if TYPE_CHECKING:
    from botwire import AsyncMemory, Memory

__all__ = [
    "MAX_ATTEMPTS",
    "ListEdit",
    "acas_edit",
    "as_list",
    "backoff",
    "cas_edit",
    "delete_at",
]

MAX_ATTEMPTS = 64

R = TypeVar("R")


@dataclass(frozen=True)
class ListEdit(Generic[R]):
    """What an edit function decided: the new list (``None`` = delete the key),
    whether anything changes at all, and the value to return to the caller."""

    result: R
    new_items: list[Any] | None = None
    changed: bool = True


def delete_at(idx: int) -> Callable[[list[Any]], ListEdit[Any]]:
    """The edit that removes the item at position ``idx`` (Python's indexing, so ``-1`` is the
    newest) and returns it; out of range: nothing changes and the result is ``None``. Both
    chat stores' ``delete_message(key, idx)``."""

    def edit(items: list[Any]) -> ListEdit[Any]:
        if not -len(items) <= idx < len(items):
            return ListEdit(result=None, changed=False)
        removed = items.pop(idx)
        return ListEdit(result=removed, new_items=items)

    return edit


def as_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(
            f"botwire key {key!r} holds a {type(value).__name__}, not a list of chat "
            "messages; delete it or use another chat key"
        )
    return list(value)


def backoff(attempt: int) -> float:
    return min(0.05, 0.001 * (2.0 ** min(attempt, 6))) * random.random()


def cas_edit(
    memory: Memory, key: str, edit: Callable[[list[Any]], ListEdit[R]], *, ttl: float | None
) -> R:
    """Apply ``edit`` to the list at ``key`` atomically (optimistic concurrency)."""
    last: Conflict | None = None
    for attempt in range(MAX_ATTEMPTS):
        entry = memory.entry(key)
        if entry is None:
            return edit([]).result
        outcome = edit(as_list(entry.value, key))
        if not outcome.changed:
            return outcome.result
        try:
            if outcome.new_items:
                memory.set(key, outcome.new_items, ttl=ttl, if_version=entry.version)
            else:
                memory.delete(key, if_version=entry.version)
        except Conflict as exc:
            last = exc
            time.sleep(backoff(attempt))
            continue
        return outcome.result
    assert last is not None
    raise last


async def acas_edit(
    memory: AsyncMemory,
    key: str,
    edit: Callable[[list[Any]], ListEdit[R]],
    *,
    ttl: float | None,
) -> R:
    """Async :func:`cas_edit`."""
    last: Conflict | None = None
    for attempt in range(MAX_ATTEMPTS):
        entry = await memory.entry(key)
        if entry is None:
            return edit([]).result
        outcome = edit(as_list(entry.value, key))
        if not outcome.changed:
            return outcome.result
        try:
            if outcome.new_items:
                await memory.set(key, outcome.new_items, ttl=ttl, if_version=entry.version)
            else:
                await memory.delete(key, if_version=entry.version)
        except Conflict as exc:
            last = exc
            await asyncio.sleep(backoff(attempt))
            continue
        return outcome.result
    assert last is not None
    raise last
