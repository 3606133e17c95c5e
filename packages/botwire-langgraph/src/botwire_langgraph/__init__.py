"""botwire for LangGraph: a checkpointer that lets a graph cut off mid-way (a serverless
timeout, a crash) resume in a fresh process, and a long-term memory store.

Example::

    from botwire import Memory
    from botwire_langgraph import BotWireSaver, BotWireStore

    graph = builder.compile(
        checkpointer=BotWireSaver(Memory("langgraph")),
        store=BotWireStore(Memory("langgraph-store")),
    )
"""

from __future__ import annotations

from ._saver import BotWireSaver
from ._store import BotWireStore

__all__ = ["BotWireSaver", "BotWireStore"]
