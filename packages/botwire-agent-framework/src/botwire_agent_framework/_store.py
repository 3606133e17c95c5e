"""``BotWireSessionStore``: Agent Framework's ``SessionStore`` kept in botwire."""

from __future__ import annotations

from typing import Any

from agent_framework import AgentSession, SessionStore

from botwire import AsyncMemory, BotWireError, Memory
from botwire_agent_framework._common import Backend, check_session_id, reraise, validate_ttl

__all__ = ["BotWireSessionStore"]

_OWNER = "BotWireSessionStore"


class BotWireSessionStore(SessionStore):
    """Agent Framework session snapshots (``AgentSession.to_dict()``) persisted in botwire.

    The drop-in for the framework's in-memory ``SessionStore`` and ``FileSessionStore`` where
    there is no lasting process or disk (Lambda, Cloud Run, Vercel): ``get``/``set``/``delete``
    are one botwire round trip each, the snapshot stored as JSON under
    ``<key_prefix><session_id>`` in ``namespace``. ``set`` replaces the snapshot (last writer
    wins, as in the framework's stores); ``ttl`` expires a session that is not written again.
    ``get`` returns a fresh ``AgentSession`` each time, so callers never share one.

    State values must survive ``AgentSession.to_dict()``: JSON values, ``Message`` objects, or
    classes registered with ``agent_framework.register_state_type``; anything else is refused
    with ``botwire.NotSerializable`` naming the session before anything is written.

    Args:
        namespace: botwire namespace (default ``"agent-framework"``, or ``memory``'s).
        memory: an existing :class:`botwire.Memory` or :class:`botwire.AsyncMemory` to use.
        url: botwire URL when ``memory`` is not given; default ``BOTWIRE_URL``.
        token: bearer token when ``memory`` is not given; default ``BOTWIRE_TOKEN``.
        ttl: seconds a snapshot lives after its last ``set``; ``None`` keeps it.
        key_prefix: prefix of every snapshot's key inside the namespace.
    """

    def __init__(
        self,
        *,
        namespace: str | None = None,
        memory: Memory | AsyncMemory | None = None,
        url: str | None = None,
        token: str | None = None,
        ttl: float | None = None,
        key_prefix: str = "agent_framework/session/",
    ) -> None:
        super().__init__()
        self.ttl = validate_ttl(_OWNER, ttl)
        self.key_prefix = key_prefix
        self._backend = Backend(_OWNER, namespace, memory, url, token)

    @property
    def namespace(self) -> str:
        """The botwire namespace holding every snapshot."""
        return self._backend.namespace

    def key_for(self, session_id: str) -> str:
        """The botwire key holding ``session_id``'s snapshot."""
        return self.key_prefix + check_session_id(_OWNER, session_id, self.namespace)

    async def get(self, session_id: str) -> AgentSession | None:
        """The stored session, restored with ``AgentSession.from_dict``; ``None`` when absent."""
        key = self.key_for(session_id)
        try:
            data = await self._backend.aio.get(key)
        except BotWireError as exc:
            reraise(exc, _OWNER, "read", session_id)
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
            raise ValueError(
                f"{_OWNER}: key {key!r} in namespace {self.namespace!r} does not hold an "
                f"AgentSession.to_dict() snapshot for session {session_id!r} (got "
                f"{type(data).__name__}); something else wrote to this key: use another "
                "key_prefix"
            )
        return AgentSession.from_dict(data)

    async def set(self, session_id: str, session: AgentSession) -> None:
        """Store ``session.to_dict()`` under ``session_id``, replacing any earlier snapshot."""
        key = self.key_for(session_id)
        snapshot: dict[str, Any] = session.to_dict()
        try:
            await self._backend.aio.set(key, snapshot, ttl=self.ttl)
        except BotWireError as exc:
            reraise(exc, _OWNER, "save", session_id)

    async def delete(self, session_id: str) -> None:
        """Delete the stored session, if present."""
        key = self.key_for(session_id)
        try:
            await self._backend.aio.delete(key)
        except BotWireError as exc:
            reraise(exc, _OWNER, "delete", session_id)

    async def aclose(self) -> None:
        """Close the botwire clients this store made (a ``memory=`` passed in stays open)."""
        await self._backend.aclose()
