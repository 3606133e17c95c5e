"""botwire for Microsoft Agent Framework: history and sessions that survive cold starts.

- :class:`BotWireHistoryProvider` — a ``HistoryProvider`` (``get_messages``/``save_messages``);
  each save is one atomic append, so concurrent writers to one session lose nothing.
- :class:`BotWireSessionStore` — a ``SessionStore`` (``get``/``set``/``delete`` of
  ``AgentSession.to_dict()``).

Example:
    >>> from agent_framework import Agent
    >>> from botwire_agent_framework import BotWireHistoryProvider
    >>> agent = Agent(client, context_providers=[BotWireHistoryProvider()])  # doctest: +SKIP
    >>> session = agent.create_session(session_id="user-42")  # doctest: +SKIP
    >>> await agent.run("hi", session=session)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botwire_agent_framework._history import BotWireHistoryProvider

if TYPE_CHECKING:
    from botwire_agent_framework._store import BotWireSessionStore

__all__ = ["BotWireHistoryProvider", "BotWireSessionStore"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: subclassing Agent Framework's SessionStore emits its
    # ExperimentalWarning, which users of the history provider alone should not see.
    if name == "BotWireSessionStore":
        from botwire_agent_framework._store import BotWireSessionStore

        return BotWireSessionStore
    raise AttributeError(f"module 'botwire_agent_framework' has no attribute {name!r}")
