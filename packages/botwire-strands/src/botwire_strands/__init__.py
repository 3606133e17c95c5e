"""AWS Strands Agents on botwire: storage, a session repository and an invocation guard.

    from strands import Agent
    from strands.session import SnapshotSessionManager
    from botwire_strands import BotWireStorage, InvocationGuard

    with InvocationGuard(session_id, namespace="my-app"):       # opt-in: one invocation at a time
        agent = Agent(session_manager=SnapshotSessionManager(
            session_id, storage=BotWireStorage("my-app")))
        agent(prompt)

``BotWireStorage`` shares its name with CrewAI's storage (``botwire_crewai.BotWireStorage``), so
``from botwire import ...`` re-exports only the names no other adapter uses; import
``BotWireStorage`` from ``botwire_strands``.
"""

from ._guard import GUARD_PREFIX, InvocationGuard, LeaseLost, SessionBusy
from ._repository import BotWireSessionRepository
from ._storage import BotWireStorage

__all__ = [
    "GUARD_PREFIX",
    "BotWireSessionRepository",
    "BotWireStorage",
    "InvocationGuard",
    "LeaseLost",
    "SessionBusy",
]
