"""Route CrewAI's default memory storage (``memory=True``) to botwire."""

from __future__ import annotations

from crewai.memory.storage.backend import StorageBackend
from crewai.memory.storage.factory import set_memory_storage_factory

from botwire import Memory
from botwire_crewai._storage import BotWireStorage

__all__ = ["use_botwire_storage"]


def use_botwire_storage(
    namespace: str = "crewai-memory",
    *,
    url: str | None = None,
    token: str | None = None,
    memory: Memory | None = None,
) -> BotWireStorage:
    """Make every CrewAI ``Memory`` built from now on store its records in botwire.

    Registers a process-wide CrewAI storage factory, so ``Agent(..., memory=True)`` and
    ``Crew(..., memory=True)`` keep their memory in the botwire namespace instead of a local
    LanceDB directory that a serverless instance loses. Only the default ``"lancedb"`` storage
    spec is redirected; an explicit ``storage=`` path or instance is left alone. Call
    ``crewai.memory.storage.factory.set_memory_storage_factory(None)`` to undo.

    CrewAI's memory still needs an embedder (OpenAI's by default) to save and search records;
    that is CrewAI's configuration, not botwire's.

    Returns:
        The shared :class:`BotWireStorage` every such memory uses.

    Example:
        >>> from botwire_crewai import use_botwire_storage
        >>> storage = use_botwire_storage("research-crew-memory")  # doctest: +SKIP
        >>> Agent(role="Researcher", goal="...", backstory="...", memory=True)  # doctest: +SKIP
    """
    storage = BotWireStorage(namespace, url=url, token=token, memory=memory)

    def factory(spec: str) -> StorageBackend | None:
        return storage if spec == "lancedb" else None

    set_memory_storage_factory(factory)
    return storage
