"""``BotWireHistoryProvider``: Agent Framework's ``HistoryProvider`` kept in botwire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from agent_framework import HistoryProvider, Message

from botwire import AsyncMemory, BotWireError, Memory
from botwire_agent_framework._common import Backend, check_session_id, reraise, validate_ttl

__all__ = ["BotWireHistoryProvider"]

_OWNER = "BotWireHistoryProvider"


class BotWireHistoryProvider(HistoryProvider):
    """Conversation history of an Agent Framework agent, persisted in botwire.

    Each session's messages are one botwire list, key ``<key_prefix><session_id>`` in
    ``namespace``, holding ``Message.to_dict()`` per message (plain JSON; bytes travel as the
    framework's own base64 data URIs). ``save_messages`` is **one** server-side ``append`` of
    the messages it is given, so several processes saving to one session at once lose nothing
    and a turn costs one round trip whatever the history length; ``get_messages`` is one read.
    Nothing lives in the process: a fresh serverless invocation sees every earlier turn.

    Like every ``HistoryProvider`` it is used through ``Agent(context_providers=[...])``; the
    framework's ``before_run`` loads the history and ``after_run`` saves only the run's new
    messages (inputs and outputs, as the ``store_*`` flags say). Unlike the framework's
    in-memory and file providers it does not read the history back to drop replayed messages:
    a save is a blind append, which is what keeps concurrent writers safe.

    Args:
        source_id: the provider's id among the agent's context providers.
        namespace: botwire namespace (default ``"agent-framework"``, or ``memory``'s).
        memory: an existing :class:`botwire.Memory` or :class:`botwire.AsyncMemory` to use.
        url: botwire URL when ``memory`` is not given; default ``BOTWIRE_URL``.
        token: bearer token when ``memory`` is not given; default ``BOTWIRE_TOKEN``.
        ttl: seconds a session's history lives after its last save (each save refreshes it);
            ``None`` keeps it until deleted.
        key_prefix: prefix of every session's key inside the namespace.
        load_messages, store_inputs, store_context_messages, store_context_from,
        store_outputs: ``HistoryProvider``'s own flags.

    Example:
        >>> from agent_framework import Agent
        >>> from botwire_agent_framework import BotWireHistoryProvider
        >>> history = BotWireHistoryProvider(namespace="support-bot", ttl=7 * 86400)
        >>> agent = Agent(client, context_providers=[history])  # doctest: +SKIP
        >>> session = agent.create_session(session_id="user-42")  # doctest: +SKIP
        >>> await agent.run("hi", session=session)  # doctest: +SKIP
    """

    DEFAULT_SOURCE_ID: ClassVar[str] = "botwire_history"

    def __init__(
        self,
        source_id: str | None = None,
        *,
        namespace: str | None = None,
        memory: Memory | AsyncMemory | None = None,
        url: str | None = None,
        token: str | None = None,
        ttl: float | None = None,
        key_prefix: str = "agent_framework/history/",
        load_messages: bool = True,
        store_inputs: bool = True,
        store_context_messages: bool = False,
        store_context_from: set[str] | None = None,
        store_outputs: bool = True,
    ) -> None:
        super().__init__(
            source_id or self.DEFAULT_SOURCE_ID,
            load_messages=load_messages,
            store_inputs=store_inputs,
            store_context_messages=store_context_messages,
            store_context_from=store_context_from,
            store_outputs=store_outputs,
        )
        self.ttl = validate_ttl(_OWNER, ttl)
        self.key_prefix = key_prefix
        self._backend = Backend(_OWNER, namespace, memory, url, token)

    @property
    def namespace(self) -> str:
        """The botwire namespace holding every session's history."""
        return self._backend.namespace

    def key_for(self, session_id: str) -> str:
        """The botwire key holding ``session_id``'s messages."""
        return self.key_prefix + check_session_id(_OWNER, session_id, self.namespace)

    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Message]:
        """Every stored message of ``session_id``, oldest first (empty for a new session)."""
        # The framework's signature allows None; key_for refuses it with a clear ValueError.
        key = self.key_for(session_id)  # type: ignore[arg-type]
        try:
            raw = await self._backend.aio.get(key)
        except BotWireError as exc:
            reraise(exc, _OWNER, "read the history of", key[len(self.key_prefix) :])
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise TypeError(
                f"{_OWNER}: key {key!r} in namespace {self.namespace!r} holds a "
                f"{type(raw).__name__}, not a list of messages; session "
                f"{session_id!r}'s history must be a list: use another key_prefix, or delete "
                "the key if nothing else needs it"
            )
        return [self._decode(item, i, session_id, key) for i, item in enumerate(raw)]

    async def save_messages(
        self,
        session_id: str | None,
        messages: Sequence[Message],
        *,
        state: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Append ``messages`` to ``session_id``'s history: one atomic botwire ``append``."""
        # The framework's signature allows None; key_for refuses it with a clear ValueError.
        key = self.key_for(session_id)  # type: ignore[arg-type]
        if not messages:
            return
        items = [m.to_dict() for m in messages]
        try:
            await self._backend.aio.append(key, *items, ttl=self.ttl)
        except BotWireError as exc:
            reraise(exc, _OWNER, f"save {len(items)} message(s) to", key[len(self.key_prefix) :])

    async def clear(self, session_id: str) -> bool:
        """Delete ``session_id``'s whole history; whether there was one."""
        key = self.key_for(session_id)
        try:
            return await self._backend.aio.delete(key)
        except BotWireError as exc:
            reraise(exc, _OWNER, "delete the history of", session_id)

    async def aclose(self) -> None:
        """Close the botwire clients this provider made (a ``memory=`` passed in stays open)."""
        await self._backend.aclose()

    def _decode(self, item: Any, index: int, session_id: str | None, key: str) -> Message:
        where = (
            f"{_OWNER}: item {index} of session {session_id!r}'s history (namespace "
            f"{self.namespace!r}, key {key!r})"
        )
        if not isinstance(item, dict):
            raise TypeError(
                f"{where} is a {type(item).__name__}, not a Message.to_dict() object; something "
                "else wrote to this key: use another key_prefix"
            )
        try:
            return Message.from_dict(item)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"{where} is not a valid Message ({exc}); something else wrote to this key: use "
                "another key_prefix"
            ) from exc
