"""botwire for CrewAI: persistent memory tools and a CrewAI memory storage backend.

- :func:`memory_tools` — tools ``remember``, ``recall``, ``list_memories``, ``forget`` that give an
  agent a key-value memory which survives between runs (``from botwire.memory import
  memory_tools`` is the same function).
- :class:`BotWireStorage` — CrewAI's ``StorageBackend`` protocol, for
  ``crewai.memory.Memory(storage=BotWireStorage("ns"), ...)``.
- :func:`use_botwire_storage` — make ``memory=True`` agents and crews store in botwire.

Example:
    >>> from crewai import Agent
    >>> from botwire_crewai import memory_tools
    >>> researcher = Agent(role="Researcher", goal="...", backstory="...",
    ...                    tools=memory_tools("research-crew"))  # doctest: +SKIP
"""

from botwire_crewai._factory import use_botwire_storage
from botwire_crewai._storage import BotWireStorage
from botwire_crewai._tools import (
    ForgetInput,
    ForgetTool,
    ListMemoriesInput,
    ListMemoriesTool,
    RecallInput,
    RecallTool,
    RememberInput,
    RememberTool,
    memory_tools,
)

__all__ = [
    "BotWireStorage",
    "ForgetInput",
    "ForgetTool",
    "ListMemoriesInput",
    "ListMemoriesTool",
    "RecallInput",
    "RecallTool",
    "RememberInput",
    "RememberTool",
    "memory_tools",
    "use_botwire_storage",
]
