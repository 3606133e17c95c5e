"""``botwire.memory``: the client (``Memory``) and the CrewAI tools, at the path the original
product's examples import them from::

    from botwire.memory import memory_tools   # needs: pip install "botwire[crewai]"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async import AsyncMemory
    from ._memory import Memory

    memory_tools: Any

__all__ = ["AsyncMemory", "Memory", "memory_tools"]


def __getattr__(name: str) -> Any:
    if name == "memory_tools":
        from ._extras import load_adapter

        return load_adapter("memory_tools", "botwire_crewai", "crewai")
    if name in ("Memory", "AsyncMemory"):
        import botwire

        return getattr(botwire, name)
    raise AttributeError(f"module 'botwire.memory' has no attribute {name!r}")
