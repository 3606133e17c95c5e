"""CrewAI tools ``remember``, ``recall``, ``list_memories``, ``forget`` on a botwire namespace."""

from __future__ import annotations

import json
import logging
from typing import Any, Union

from crewai.tools import BaseTool
from pydantic import BaseModel, Field, PrivateAttr

from botwire import AsyncMemory, BotWireError, Memory

__all__ = [
    "ForgetInput",
    "ForgetTool",
    "ListMemoriesInput",
    "ListMemoriesTool",
    "RecallInput",
    "RecallTool",
    "RememberInput",
    "RememberTool",
    "memory_tools",
]

_log = logging.getLogger("botwire_crewai")

JSONValue = Union[str, int, float, bool, list[Any], dict[str, Any]]  # noqa: UP007 (pydantic)

_MAX_KEYS_SHOWN = 100
_MISSING: Any = object()


class RememberInput(BaseModel):
    """Save a value in long-term memory under a key."""

    key: str = Field(
        min_length=1,
        description="Short name to store the memory under, e.g. 'user_timezone'. "
        "Storing under an existing key replaces its value.",
    )
    value: JSONValue = Field(
        description="What to remember: text, a number, true/false, a list or an object."
    )


class RecallInput(BaseModel):
    """Read the value saved in long-term memory under a key."""

    key: str = Field(min_length=1, description="The key the memory was stored under.")


class ListMemoriesInput(BaseModel):
    """List the keys saved in long-term memory."""

    prefix: str = Field(
        default="", description="Only list keys starting with this text; empty lists all keys."
    )


class ForgetInput(BaseModel):
    """Delete the value saved in long-term memory under a key."""

    key: str = Field(min_length=1, description="The key of the memory to delete.")


def render(value: Any, limit: int) -> str:
    """Plain text for a stored value: strings as-is, anything else as JSON; cut at ``limit``."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > limit:
        return f"{text[:limit]}… (truncated; {len(text) - limit} more characters)"
    return text


def _error(action: str, exc: BotWireError) -> str:
    _log.warning("botwire memory tool %s failed: %s", action, exc)
    return f"Error: could not {action}: {exc}"


class _BotWireTool(BaseTool):
    """Shared plumbing: a lazily opened botwire client; errors become readable text."""

    namespace: str = Field(description="botwire namespace the tool reads and writes.")
    url: str | None = Field(default=None, description="botwire URL; None means BOTWIRE_URL.")
    max_result_chars: int = Field(default=8000, description="Longest result text returned.")

    _memory: Memory | None = PrivateAttr(default=None)
    _amemory: AsyncMemory | None = PrivateAttr(default=None)

    def _sync(self) -> Memory:
        if self._memory is None:
            self._memory = Memory(self.namespace, url=self.url)
        return self._memory

    def _async(self) -> AsyncMemory:
        if self._amemory is None:
            self._amemory = self._sync().as_async()
        return self._amemory

    def _bind(self, memory: Memory) -> _BotWireTool:
        self._memory = memory
        return self


class RememberTool(_BotWireTool):
    """Store a value under a key in long-term memory.

    Example:
        >>> tool = RememberTool(namespace="research-crew")  # doctest: +SKIP
        >>> tool.run(key="topic", value="solar panels")  # doctest: +SKIP
        "Remembered 'topic'."
    """

    name: str = "remember"
    description: str = (
        "Save a fact in long-term memory under a short key so it is still there in later "
        "runs. Saving under an existing key replaces the old value."
    )
    args_schema: type[BaseModel] = RememberInput
    ttl: int | None = Field(default=None, description="Seconds until the memory expires.")

    def _run(self, key: str, value: Any) -> str:
        try:
            self._sync().set(key, value, ttl=self.ttl)
        except BotWireError as exc:
            return _error(f"remember {key!r}", exc)
        return f"Remembered {key!r}."

    async def _arun(self, key: str, value: Any) -> str:
        try:
            await self._async().set(key, value, ttl=self.ttl)
        except BotWireError as exc:
            return _error(f"remember {key!r}", exc)
        return f"Remembered {key!r}."


class RecallTool(_BotWireTool):
    """Read the value stored under a key.

    Example:
        >>> RecallTool(namespace="research-crew").run(key="topic")  # doctest: +SKIP
        'solar panels'
    """

    name: str = "recall"
    description: str = (
        "Read what was saved in long-term memory under a key. Returns the stored value, "
        "or says that nothing is stored and lists the keys that exist."
    )
    args_schema: type[BaseModel] = RecallInput

    def _found(self, key: str, value: Any, keys: list[str] | None) -> str:
        if value is not _MISSING:
            return render(value, self.max_result_chars)
        shown = ", ".join(repr(k) for k in (keys or [])[:20])
        known = f" Stored keys: {shown}." if shown else " The memory is empty."
        return f"Nothing is stored under {key!r}.{known}"

    def _run(self, key: str) -> str:
        try:
            memory = self._sync()
            value = memory.get(key, _MISSING)
            keys = memory.list() if value is _MISSING else None
        except BotWireError as exc:
            return _error(f"recall {key!r}", exc)
        return self._found(key, value, keys)

    async def _arun(self, key: str) -> str:
        try:
            memory = self._async()
            value = await memory.get(key, _MISSING)
            keys = await memory.list() if value is _MISSING else None
        except BotWireError as exc:
            return _error(f"recall {key!r}", exc)
        return self._found(key, value, keys)


class ListMemoriesTool(_BotWireTool):
    """List the keys stored in long-term memory.

    Example:
        >>> ListMemoriesTool(namespace="research-crew").run(prefix="")  # doctest: +SKIP
        "2 memories: 'sources', 'topic'"
    """

    name: str = "list_memories"
    description: str = (
        "List the keys saved in long-term memory, optionally only those starting with a prefix."
    )
    args_schema: type[BaseModel] = ListMemoriesInput

    @staticmethod
    def _format(keys: list[str], prefix: str) -> str:
        where = f" starting with {prefix!r}" if prefix else ""
        if not keys:
            return f"No memories stored{where}."
        shown = ", ".join(repr(k) for k in keys[:_MAX_KEYS_SHOWN])
        more = f" … and {len(keys) - _MAX_KEYS_SHOWN} more" if len(keys) > _MAX_KEYS_SHOWN else ""
        noun = "memory" if len(keys) == 1 else "memories"
        return f"{len(keys)} {noun}{where}: {shown}{more}"

    def _run(self, prefix: str = "") -> str:
        try:
            keys = self._sync().list(prefix=prefix)
        except BotWireError as exc:
            return _error("list memories", exc)
        return self._format(keys, prefix)

    async def _arun(self, prefix: str = "") -> str:
        try:
            keys = await self._async().list(prefix=prefix)
        except BotWireError as exc:
            return _error("list memories", exc)
        return self._format(keys, prefix)


class ForgetTool(_BotWireTool):
    """Delete the memory stored under a key.

    Example:
        >>> ForgetTool(namespace="research-crew").run(key="topic")  # doctest: +SKIP
        "Forgot 'topic'."
    """

    name: str = "forget"
    description: str = "Delete what was saved in long-term memory under a key."
    args_schema: type[BaseModel] = ForgetInput

    @staticmethod
    def _format(key: str, existed: bool) -> str:
        return f"Forgot {key!r}." if existed else f"Nothing was stored under {key!r}."

    def _run(self, key: str) -> str:
        try:
            existed = self._sync().delete(key)
        except BotWireError as exc:
            return _error(f"forget {key!r}", exc)
        return self._format(key, existed)

    async def _arun(self, key: str) -> str:
        try:
            existed = await self._async().delete(key)
        except BotWireError as exc:
            return _error(f"forget {key!r}", exc)
        return self._format(key, existed)


def memory_tools(
    namespace: str | None = None,
    *,
    memory: Memory | None = None,
    url: str | None = None,
    read_only: bool = False,
    ttl: int | None = None,
) -> list[BaseTool]:
    """CrewAI tools that give an agent a persistent key-value memory.

    Returns ``[remember, recall, list_memories, forget]`` (``[recall, list_memories]`` when
    ``read_only``). All tools share one botwire client. Results are plain text; botwire errors
    (quota, network, bad key…) come back as text starting with ``Error:`` instead of stopping
    the agent.

    Args:
        namespace: botwire namespace, e.g. ``"research-crew"``. Required unless ``memory``.
        memory: an existing :class:`botwire.Memory` (its namespace and backend are used).
        url: botwire URL when ``memory`` is not given; default ``BOTWIRE_URL``.
        read_only: leave out ``remember`` and ``forget``.
        ttl: seconds after which what ``remember`` stores expires (default: never).

    Example:
        >>> from crewai import Agent
        >>> from botwire.memory import memory_tools
        >>> researcher = Agent(role="Researcher", goal="...", backstory="...",
        ...                    tools=memory_tools("research-crew"))  # doctest: +SKIP
    """
    if memory is None:
        if namespace is None:
            raise TypeError(
                "memory_tools() needs a namespace, e.g. memory_tools('research-crew'), "
                "or memory=botwire.Memory(...)"
            )
        memory = Memory(namespace, url=url)
    elif namespace is not None and namespace != memory.namespace:
        raise ValueError(
            f"memory_tools(): namespace {namespace!r} differs from memory.namespace "
            f"{memory.namespace!r}; pass only one of them"
        )
    common: dict[str, Any] = {"namespace": memory.namespace, "url": url}
    tools: list[_BotWireTool] = []
    if not read_only:
        tools.append(RememberTool(ttl=ttl, **common))
    tools += [RecallTool(**common), ListMemoriesTool(**common)]
    if not read_only:
        tools.append(ForgetTool(**common))
    return [t._bind(memory) for t in tools]
