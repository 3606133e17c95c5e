"""botwire: persistent key-value memory for AI agents on serverless compute.

    from botwire import Memory
    memory = Memory("user-42")
    memory.append("chat_history", {"user": "hi", "assistant": "hello"})

Names resolve lazily so that ``import botwire`` costs almost nothing on a cold start; framework
adapters (``BotWireChatHistory`` ...) resolve to their packages when installed.
"""

from __future__ import annotations

__version__ = "0.3.0"

# Not ``from typing import TYPE_CHECKING``: importing typing costs a cold start several ms, and
# ``import botwire`` must cost almost nothing. Type checkers treat this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._async import AsyncMemory
    from ._atomic import AsyncTransaction, Transaction
    from ._config import BotWireWarning
    from ._errors import (
        BotWireError,
        Closed,
        Conflict,
        Forbidden,
        InvalidArgument,
        InvalidKey,
        InvalidNamespace,
        KeyRewritten,
        Misrouted,
        NotSerializable,
        QuotaExceeded,
        StorageFull,
        TLSError,
        TypeMismatch,
        Unauthorized,
        Unavailable,
        ValueTooLarge,
    )
    from ._memory import Memory
    from ._types import Entry, KeyInfo, Limits, Usage

__all__ = [
    "AsyncMemory",
    "AsyncTransaction",
    "BotWireArtifactService",
    "BotWireChatHistory",
    "BotWireConversationStore",
    "BotWireError",
    "BotWireHistoryProvider",
    "BotWireMemoryService",
    "BotWireMessageHistory",
    "BotWireRunStore",
    "BotWireSaver",
    "BotWireSession",
    "BotWireSessionRepository",
    "BotWireSessionService",
    "BotWireSessionStore",
    "BotWireWarning",
    "Closed",
    "Conflict",
    "Entry",
    "Forbidden",
    "InvalidArgument",
    "InvalidKey",
    "InvalidNamespace",
    "InvocationGuard",
    "KeyInfo",
    "KeyRewritten",
    "Limits",
    "Memory",
    "Misrouted",
    "NotSerializable",
    "QuotaExceeded",
    "StorageFull",
    "TLSError",
    "Transaction",
    "TypeMismatch",
    "Unauthorized",
    "Unavailable",
    "Usage",
    "ValueTooLarge",
    "__version__",
]

_ERRORS = [
    "BotWireError",
    "BotWireSaver",
    "Closed",
    "Conflict",
    "Forbidden",
    "InvalidArgument",
    "InvalidKey",
    "InvalidNamespace",
    "KeyRewritten",
    "Misrouted",
    "NotSerializable",
    "QuotaExceeded",
    "StorageFull",
    "TLSError",
    "TypeMismatch",
    "Unauthorized",
    "Unavailable",
    "ValueTooLarge",
]
_LOCAL: dict[str, str] = {
    "Memory": "._memory",
    "AsyncMemory": "._async",
    "Transaction": "._atomic",
    "AsyncTransaction": "._atomic",
    "BotWireWarning": "._config",
    "Entry": "._types",
    "KeyInfo": "._types",
    "Limits": "._types",
    "Usage": "._types",
    **dict.fromkeys(_ERRORS, "._errors"),
}
# name -> (module of the adapter package, extra that installs it)
ADAPTERS: dict[str, tuple[str, str]] = {
    "BotWireChatHistory": ("botwire_langchain", "langchain"),
    "BotWireSaver": ("botwire_langgraph", "langgraph"),
    "BotWireHistoryProvider": ("botwire_agent_framework", "agent-framework"),
    "BotWireSessionStore": ("botwire_agent_framework", "agent-framework"),
    "BotWireSession": ("botwire_openai_agents", "openai-agents"),
    "BotWireRunStore": ("botwire_openai_agents", "openai-agents"),
    "BotWireConversationStore": ("botwire_pydantic_ai", "pydantic-ai"),
    "BotWireMessageHistory": ("botwire_pydantic_ai", "pydantic-ai"),
    "BotWireSessionService": ("botwire_adk", "adk"),
    "BotWireMemoryService": ("botwire_adk", "adk"),
    "BotWireArtifactService": ("botwire_adk", "adk"),
    # Strands: BotWireStorage clashes with CrewAI's, so it is imported from botwire_strands.
    "BotWireSessionRepository": ("botwire_strands", "strands"),
    "InvocationGuard": ("botwire_strands", "strands"),
}


def __getattr__(name: str) -> Any:
    module = _LOCAL.get(name)
    if module is not None:
        # __import__, not importlib.import_module: importing importlib costs a cold start.
        value = getattr(__import__(__name__ + module, None, None, [name]), name)
        globals()[name] = value
        return value
    if name in ADAPTERS:
        from ._extras import load_adapter

        return load_adapter(name, *ADAPTERS[name])
    raise AttributeError(f"module 'botwire' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
