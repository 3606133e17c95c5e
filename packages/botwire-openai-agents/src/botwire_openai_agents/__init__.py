"""OpenAI Agents SDK on botwire: persistent sessions and parked (human-approval) runs.

``BotWireSession`` is an ``agents.memory.SessionABC`` (so ``EncryptedSession`` wraps it);
``BotWireRunStore`` parks a paused run's ``RunState`` under a TTL and resumes it in another
invocation.
"""

from botwire_openai_agents._runs import RUN_KEY_PREFIX, BotWireRunStore
from botwire_openai_agents._session import SESSION_KEY_PREFIX, BotWireSession

__all__ = ["RUN_KEY_PREFIX", "SESSION_KEY_PREFIX", "BotWireRunStore", "BotWireSession"]
__version__ = "0.3.0"
