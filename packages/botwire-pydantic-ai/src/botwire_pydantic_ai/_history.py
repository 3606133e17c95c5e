"""A plain ``message_history`` per conversation, one botwire list each (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic_ai.messages import ModelMessage

from botwire import BotWireError
from botwire.integration import MemoryPair
from botwire_pydantic_ai._codec import decode_messages, encode_messages

if TYPE_CHECKING:
    from pydantic_ai.agent import AbstractAgent
    from pydantic_ai.run import AgentRunResult

    from botwire import AsyncMemory, Memory

__all__ = ["HISTORY_PREFIX", "BotWireMessageHistory", "run_with_history"]

HISTORY_PREFIX = "pydantic-ai/history/"
DEFAULT_NAMESPACE = "pydantic-ai"


class BotWireMessageHistory:
    """The messages of one conversation, as ``agent.run(..., message_history=...)`` takes them.

    Stored as one botwire list (``pydantic-ai/history/<conversation_id>``), one JSON item per
    message in ``ModelMessagesTypeAdapter`` form (bytes as base64). :meth:`add` is one atomic
    ``append``: concurrent turns never lose a message (they interleave, turn by turn).
    ``max_messages`` keeps the newest (the cut never starts the history with a tool return
    without its call: it is aligned to a user request); ``ttl`` expires an idle conversation.
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
        """The stored messages, oldest first (``[]`` for a new conversation)."""
        try:
            if self.max_messages is None:
                values = await self._clients.aio.get(self.key) or []
            else:
                values = await self._clients.aio.tail(self.key, self.max_messages)
        except BotWireError as exc:
            raise self._note(exc, "loading") from None
        if not isinstance(values, list):
            raise TypeError(
                f"key {self.key!r} in botwire namespace {self.namespace!r} holds a "
                f"{type(values).__name__}, not the list of messages of Pydantic AI conversation "
                f"{self.conversation_id!r}; it was written by something else: use another "
                "conversation_id or namespace (the value was left as it is)"
            )
        messages = decode_messages(values)
        return _from_a_request(messages) if self.max_messages else messages

    async def add(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` (a run's ``new_messages()``) in one atomic ``append``."""
        if not messages:
            return
        try:
            await self._clients.aio.append(
                self.key, *encode_messages(list(messages)), max_len=self.max_messages, ttl=self.ttl
            )
        except BotWireError as exc:
            raise self._note(exc, f"adding {len(messages)} message(s) to") from None

    async def clear(self) -> None:
        try:
            await self._clients.aio.delete(self.key)
        except BotWireError as exc:
            raise self._note(exc, "clearing") from None

    async def aclose(self) -> None:
        await self._clients.aclose()


def _from_a_request(messages: list[ModelMessage]) -> list[ModelMessage]:
    """Drop leading messages until a request with a user prompt: a window cut mid-turn
    would start with a tool return whose call was cut off, which models reject."""
    for i, m in enumerate(messages):
        if m.kind == "request" and any(p.part_kind == "user-prompt" for p in m.parts):
            return messages[i:]
    return []


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
