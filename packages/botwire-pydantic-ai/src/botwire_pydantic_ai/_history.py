"""A plain ``message_history`` per conversation, one botwire list each (private)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic_ai.messages import ModelMessage, ModelRequest, SystemPromptPart

from botwire import BotWireError
from botwire.integration import MemoryPair
from botwire_pydantic_ai._codec import decode_messages, encode_messages

if TYPE_CHECKING:
    from pydantic_ai.agent import AbstractAgent
    from pydantic_ai.run import AgentRunResult

    from botwire import AsyncMemory, Memory

__all__ = ["HISTORY_PREFIX", "SYSTEM_PROMPT_PREFIX", "BotWireMessageHistory", "run_with_history"]

HISTORY_PREFIX = "pydantic-ai/history/"
#: The system prompt of a windowed conversation, kept apart from its list: the window's trim
#: would drop it with the first request, and Pydantic AI adds it only to an empty history.
SYSTEM_PROMPT_PREFIX = "pydantic-ai/system-prompt/"
DEFAULT_NAMESPACE = "pydantic-ai"
_UNKNOWN: Any = object()  # the system prompt key not read yet


class BotWireMessageHistory:
    """The messages of one conversation, as ``agent.run(..., message_history=...)`` takes them.

    Stored as one botwire list (``pydantic-ai/history/<conversation_id>``), one JSON item per
    message in ``ModelMessagesTypeAdapter`` form (bytes as base64). :meth:`add` is one atomic
    transaction around an ``append``: concurrent turns never lose a message (they interleave,
    turn by turn). ``ttl`` expires an idle conversation (every :meth:`add` refreshes it).

    ``max_messages`` keeps a window of the newest messages: it starts at a user request (never
    at a tool return whose call was cut off) and always holds the newest complete turn, even
    one longer than ``max_messages`` (the append keeps that turn whole). The agent's system
    prompt, which Pydantic AI adds only to an empty history, is stored once under
    ``pydantic-ai/system-prompt/<conversation_id>`` and put back in front of a window that cut
    it off.
    """

    def __init__(
        self,
        conversation_id: str,
        *,
        namespace: str | None = None,
        memory: Memory | AsyncMemory | None = None,
        ttl: float | None = None,
        max_messages: int | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ValueError(
                f"BotWireMessageHistory needs a non-empty string conversation_id, "
                f"got {conversation_id!r}"
            )
        if max_messages is not None and max_messages < 1:
            raise ValueError(
                f"max_messages must be a positive integer or None, got {max_messages!r}"
            )
        self.conversation_id = conversation_id
        self.key = HISTORY_PREFIX + conversation_id
        self.system_key = SYSTEM_PROMPT_PREFIX + conversation_id
        self.ttl = ttl
        self.max_messages = max_messages
        self._clients = MemoryPair(
            namespace,
            memory,
            url=url,
            token=token,
            default_namespace=DEFAULT_NAMESPACE,
            adapter="BotWireMessageHistory",
        )
        # The system prompt (a request holding only its parts, as JSON), whether its key holds
        # it, and how many messages the turn in progress has: what the next add() needs.
        self._system: Any = _UNKNOWN
        self._system_saved = False
        self._open_turn = 0

    @property
    def namespace(self) -> str:
        return self._clients.namespace

    def _note(self, exc: BaseException, what: str) -> BaseException:
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"while {what} Pydantic AI conversation {self.conversation_id!r} "
                f"(botwire namespace {self.namespace!r}, key {self.key!r})"
            )
        return exc

    async def load(self) -> list[ModelMessage]:
        """The stored messages, oldest first (``[]`` for a new conversation); with
        ``max_messages``, the window described in the class docstring. One round trip."""
        try:
            got = await self._clients.aio.get_many([self.key, self.system_key])
        except BotWireError as exc:
            raise self._note(exc, "loading") from None
        values = got.get(self.key, [])
        if not isinstance(values, list):
            raise TypeError(
                f"key {self.key!r} in botwire namespace {self.namespace!r} holds a "
                f"{type(values).__name__}, not the list of messages of Pydantic AI conversation "
                f"{self.conversation_id!r}; it was written by something else: use another "
                "conversation_id or namespace (the value was left as it is)"
            )
        self._system = got.get(self.system_key)
        self._system_saved = self._system is not None
        if self._system is None and values and _system_parts(values[0]):
            # Written untrimmed (no key needed yet): adopt the first request's system prompt,
            # so an add() that trims it away stores it first.
            self._system = _system_request(values[0])
        start = 0 if self.max_messages is None else self._window_start(values)
        window = values[start:]
        users = [i for i, v in enumerate(window) if _is_user_request(v)]
        self._open_turn = len(window) - users[-1] if users else len(window)
        messages = decode_messages(window)
        if self._system is not None:  # the list itself may have been trimmed: not only start
            messages = _with_system_prompt(messages, self._system)
        return messages

    def _window_start(self, values: list[Any]) -> int:
        """The first user request among the newest ``max_messages``; else (a turn longer than
        that) the last one before them, so the newest complete turn is always kept."""
        assert self.max_messages is not None
        users = [i for i, v in enumerate(values) if _is_user_request(v)]
        cut = max(len(values) - self.max_messages, 0)
        later = [i for i in users if i >= cut]
        if later or users:
            return later[0] if later else users[-1]
        if values:
            warnings.warn(
                f"botwire-pydantic-ai: the {len(values)} stored messages of conversation "
                f"{self.conversation_id!r} (botwire namespace {self.namespace!r}, key "
                f"{self.key!r}) hold no user request to start a window at (a turn without a "
                "user prompt was added by an object that had not loaded the history); loading "
                "an empty history. Load and add through the same BotWireMessageHistory, or "
                "raise max_messages.",
                RuntimeWarning,
                stacklevel=3,
            )
        return len(values)

    async def add(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` (a run's ``new_messages()``) in one atomic transaction."""
        if not messages:
            return
        encoded = encode_messages(list(messages))
        users = [i for i, v in enumerate(encoded) if _is_user_request(v)]
        # A run without a user prompt (deferred tool results) continues the loaded turn.
        turn = len(encoded) - users[-1] if users else self._open_turn + len(encoded)
        keep = None if self.max_messages is None else max(self.max_messages, turn)
        try:
            system = await self._system_to_write(encoded[0])
            tx = self._clients.aio.atomic()
            tx.append(self.key, *encoded, max_len=keep, ttl=self.ttl)
            if system is not None:
                tx.set(self.system_key, system, ttl=self.ttl)
            await tx.commit()
        except BotWireError as exc:
            raise self._note(exc, f"adding {len(messages)} message(s) to") from None
        self._open_turn = turn
        self._system_saved = self._system_saved or system is not None

    async def _system_to_write(self, first: Any) -> Any:
        """The system prompt this add stores: once, when a trimming window first sees it, and
        again with each add under a ``ttl`` (so it never expires before the messages)."""
        if self.max_messages is None:
            return None  # nothing is trimmed: the first request keeps it
        opening = _system_parts(first)
        if self._system is _UNKNOWN:
            if not opening and self.ttl is None:
                return None
            self._system = await self._clients.aio.get(self.system_key)  # add() without load()
            self._system_saved = self._system is not None
        if self._system is None and opening:
            self._system = _system_request(first)
        if self._system is not None and (not self._system_saved or self.ttl is not None):
            return self._system
        return None

    async def clear(self) -> None:
        try:
            await self._clients.aio.delete_many([self.key, self.system_key])
        except BotWireError as exc:
            raise self._note(exc, "clearing") from None
        self._system, self._system_saved, self._open_turn = None, False, 0

    async def aclose(self) -> None:
        await self._clients.aclose()


def _is_user_request(value: Any) -> bool:
    """A stored request carrying a user prompt: where a turn starts."""
    return (
        isinstance(value, dict)
        and value.get("kind") == "request"
        and any(_kind(p) == "user-prompt" for p in value.get("parts", ()))
    )


def _kind(part: Any) -> Any:
    return part.get("part_kind") if isinstance(part, dict) else None


def _system_parts(value: Any) -> list[Any]:
    if not isinstance(value, dict) or value.get("kind") != "request":
        return []
    return [p for p in value.get("parts", ()) if _kind(p) == "system-prompt"]


def _system_request(value: Any) -> Any:
    """A stored request reduced to its system-prompt parts (JSON)."""
    return {"kind": "request", "parts": _system_parts(value)}


def _with_system_prompt(messages: list[ModelMessage], system: Any) -> list[ModelMessage]:
    """The window with the system prompt opening its first request, as Pydantic AI builds a
    conversation's first request (system parts, then the user prompt)."""
    parts = [p for p in decode_messages([system])[0].parts if isinstance(p, SystemPromptPart)]
    first = messages[0] if messages else None
    if not parts or not isinstance(first, ModelRequest) or list(first.parts[: len(parts)]) == parts:
        return messages
    return [dataclasses.replace(first, parts=[*parts, *first.parts]), *messages[1:]]


async def run_with_history(
    agent: AbstractAgent[Any, Any],
    user_prompt: str | Sequence[Any] | None,
    conversation_id: str,
    *,
    namespace: str | None = None,
    memory: Memory | AsyncMemory | None = None,
    ttl: float | None = None,
    max_messages: int | None = None,
    url: str | None = None,
    token: str | None = None,
    **run_kwargs: Any,
) -> AgentRunResult[Any]:
    """One call per turn: load the conversation, ``agent.run`` it, append the new messages.

    Example (a Lambda handler)::

        result = await run_with_history(agent, event["text"], event["user_id"])
        return {"reply": result.output}
    """
    history = BotWireMessageHistory(
        conversation_id,
        namespace=namespace,
        memory=memory,
        ttl=ttl,
        max_messages=max_messages,
        url=url,
        token=token,
    )
    try:
        result = await agent.run(user_prompt, message_history=await history.load(), **run_kwargs)
        await history.add(result.new_messages())
    finally:
        await history.aclose()
    return result
