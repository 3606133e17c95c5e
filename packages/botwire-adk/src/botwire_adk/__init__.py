"""Google ADK services backed by botwire: sessions, memory and artifacts.

    from botwire_adk import BotWireSessionService
    runner = Runner(agent=agent, app_name="shop", session_service=BotWireSessionService())

``adk web`` / ``adk api_server`` take them without code through a ``services.yaml`` in the
agents directory (see docs/adk.md)::

    services:
      - {scheme: botwire, type: session, class: botwire_adk.BotWireSessionService}
      - {scheme: botwire, type: memory, class: botwire_adk.BotWireMemoryService}
      - {scheme: botwire, type: artifact, class: botwire_adk.BotWireArtifactService}
"""

from __future__ import annotations

from ._artifacts import BotWireArtifactService
from ._memory_service import BotWireMemoryService
from ._session import BotWireSessionService

__all__ = ["BotWireArtifactService", "BotWireMemoryService", "BotWireSessionService", "register"]


def register(schemes: tuple[str, ...] = ("botwire", "botwires")) -> None:
    """Register the three services under ``schemes`` in ADK's service registry (from a
    ``services.py`` or before ``get_fast_api_app``); a ``services.yaml`` does the same without
    code (docs/adk.md)."""
    from google.adk.cli.service_registry import get_service_registry

    registry = get_service_registry()
    for scheme in schemes:
        registry.register_session_service(
            scheme, lambda uri, **kw: BotWireSessionService(uri=uri, **kw)
        )
        registry.register_memory_service(
            scheme, lambda uri, **kw: BotWireMemoryService(uri=uri, **kw)
        )
        registry.register_artifact_service(
            scheme, lambda uri, **kw: BotWireArtifactService(uri=uri, **kw)
        )
