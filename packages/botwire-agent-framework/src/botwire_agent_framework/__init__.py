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

from botwire_agent_framework._history import BotWireHistoryProvider
from botwire_agent_framework._store import BotWireSessionStore

__all__ = ["BotWireHistoryProvider", "BotWireSessionStore"]
