"""Google ADK services backed by botwire: sessions, memory and artifacts.

    from botwire_adk import BotWireSessionService
    runner = Runner(agent=agent, app_name="shop", session_service=BotWireSessionService())

``adk web`` / ``adk api_server`` take them without code through a ``services.yaml`` in the
agents directory (see docs/adk.md)::

    services:
      - {scheme: botwire, type: session, class: botwire_adk.BotWireSessionService}
"""

from __future__ import annotations

from ._session import BotWireSessionService

__all__ = ["BotWireSessionService"]
