"""What the history provider and the session store share: clients, keys and error wording."""

from __future__ import annotations

from typing import Any, NoReturn

from botwire import AsyncMemory, BotWireError, Memory
from botwire.integration import MemoryPair

__all__ = ["DEFAULT_NAMESPACE", "Backend", "check_session_id", "reraise", "validate_ttl"]

#: Namespace used when neither ``namespace`` nor ``memory`` is given.
DEFAULT_NAMESPACE = "agent-framework"


def validate_ttl(owner: str, ttl: float | None) -> float | None:
    """``ttl`` if it is ``None`` or a positive number of seconds; a clear error otherwise."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise ValueError(
            f"{owner}: ttl must be a positive number of seconds or None (no expiry), got {ttl!r}"
        )
    return ttl


def check_session_id(owner: str, session_id: Any, namespace: str) -> str:
    """``session_id`` if it is a non-empty string; otherwise a ValueError naming the rule."""
    if not isinstance(session_id, str) or not session_id:
        raise ValueError(
            f"{owner}: session_id must be a non-empty string, got {session_id!r} "
            f"(namespace {namespace!r}); pass session=agent.create_session() or an "
            "AgentSession(session_id=...) to agent.run(...)"
        )
    return session_id


def reraise(exc: BotWireError, owner: str, action: str, session_id: str) -> NoReturn:
    """Raise ``exc`` again as the same botwire error class, its message naming the session.

    botwire's own message already names the namespace and key; the caller knows the session,
    which is what an Agent Framework user looks for. Same class, same attributes, so code that
    catches ``botwire.QuotaExceeded`` (say) keeps working.
    """
    message = (
        f"{owner} could not {action} session {session_id!r} "
        f"(namespace {exc.namespace!r}, key {exc.key!r}): {exc.message}"
    )
    try:
        new = type(exc)(message, namespace=exc.namespace, key=exc.key, **exc.details)
    except TypeError:  # pragma: no cover - an error class with its own constructor
        raise exc from None
    raise new from exc


class Backend:
    """The async botwire client an adapter object talks to, made once from its arguments."""

    def __init__(
        self,
        owner: str,
        namespace: str | None,
        memory: Memory | AsyncMemory | None,
        url: str | None,
        token: str | None,
    ) -> None:
        self.pair = MemoryPair(
            namespace,
            memory,
            url=url,
            token=token,
            default_namespace=DEFAULT_NAMESPACE,
            adapter=owner,
        )

    @property
    def namespace(self) -> str:
        """The botwire namespace every session of this object lives in."""
        return self.pair.namespace

    @property
    def aio(self) -> AsyncMemory:
        """The async client (Agent Framework's storage interfaces are all async)."""
        return self.pair.aio

    async def aclose(self) -> None:
        """Close the clients this object made (a ``memory=`` passed in stays open)."""
        await self.pair.aclose()
