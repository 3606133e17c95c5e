"""Save and load an AutoGen agent's or team's ``save_state()`` under a botwire key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable

from pydantic_core import to_jsonable_python

from botwire import AsyncMemory
from botwire import Memory as SyncMemory
from botwire_autogen._memory import BotWireMemory

__all__ = ["HasState", "MemoryLike", "delete_state", "load_state", "save_state"]


@runtime_checkable
class HasState(Protocol):
    """Anything with AutoGen's state methods: agents, teams, model contexts."""

    async def save_state(self) -> Mapping[str, Any]: ...

    async def load_state(self, state: Mapping[str, Any]) -> None: ...


MemoryLike = AsyncMemory | SyncMemory | BotWireMemory | str
"""Where state goes: a botwire client, a :class:`BotWireMemory` (its client), or a namespace."""


@asynccontextmanager
async def _client(where: MemoryLike) -> AsyncIterator[AsyncMemory]:
    if isinstance(where, str):
        async with AsyncMemory(where) as memory:
            yield memory
    elif isinstance(where, BotWireMemory):
        yield where.client
    elif isinstance(where, SyncMemory):
        memory = where.as_async()
        try:
            yield memory
        finally:
            await memory.aclose()
    elif isinstance(where, AsyncMemory):
        yield where
    else:
        raise TypeError(
            f"expected a namespace, botwire.Memory, botwire.AsyncMemory or BotWireMemory, "
            f"got {type(where).__name__}"
        )


async def save_state(
    where: MemoryLike, key: str, component: HasState, *, ttl: float | None = None
) -> int:
    """Store ``await component.save_state()`` under ``key``; returns the new version.

    Use it at the end of an invocation, and :func:`load_state` at the start of the next one
    (possibly another process or machine) to resume an ``AssistantAgent`` or a team.

    Example:
        >>> await save_state("user-alice", "assistant-state", agent)  # doctest: +SKIP
        >>> # ... next invocation, fresh process:
        >>> await load_state("user-alice", "assistant-state", agent)  # doctest: +SKIP
        True
    """
    state = to_jsonable_python(await component.save_state())
    async with _client(where) as memory:
        return await memory.set(key, state, ttl=ttl)


async def load_state(where: MemoryLike, key: str, component: HasState) -> bool:
    """Load the state saved under ``key`` into ``component``; ``False`` when there is none."""
    async with _client(where) as memory:
        state = await memory.get(key)
    if state is None:
        return False
    if not isinstance(state, Mapping):
        raise TypeError(
            f"load_state(): key {key!r} holds a {type(state).__name__}, not a saved AutoGen "
            f"state; was it written by save_state()?"
        )
    await component.load_state(state)
    return True


async def delete_state(where: MemoryLike, key: str) -> bool:
    """Delete the state saved under ``key``; whether there was one."""
    async with _client(where) as memory:
        return await memory.delete(key)
