"""``BotWireStore``: LangGraph's long-term memory store on botwire."""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.store.base import BaseStore, Op, Result, TTLConfig

from botwire import AsyncMemory, Memory

from ._io import run_async, run_sync
from ._store_plans import batch_plan

__all__ = ["BotWireStore"]


class BotWireStore(BaseStore):
    """LangGraph's ``BaseStore`` (long-term memory shared across threads) backed by botwire.

    A LangGraph namespace is a tuple of strings; item ``key`` in namespace ``("users", "alice")``
    is stored under the botwire key ``i/users/alice/key`` inside one botwire namespace (default
    ``"langgraph-store"``), each label and the key escaped so any string round-trips (``%`` →
    ``%25``, ``/`` → ``%2F``). Values must be JSON (they are stored natively, not pickled).

    Supports ``get``/``put``/``delete``/``search`` (filters ``$eq $ne $gt $gte $lt $lte`` and
    nested fields, ``limit``, ``offset``; newest first) and ``list_namespaces`` (prefix, suffix,
    ``*`` wildcards, ``max_depth``). TTLs are in minutes, as everywhere in LangGraph; reads
    refresh them unless ``refresh_ttl=False`` or ``ttl={"refresh_on_read": False}``. There is
    no vector index: ``search(query=...)`` raises ``NotImplementedError``.

    Args:
        memory: the botwire client (``Memory`` serves sync and async calls; ``AsyncMemory`` only
            async ones). Omitted: ``Memory(namespace, url=url, token=token)``.
        namespace, url, token: used when ``memory`` is omitted.
        ttl: a LangGraph ``TTLConfig`` (``default_ttl`` in minutes, ``refresh_on_read``).

    Example::

        from botwire import Memory
        from botwire_langgraph import BotWireStore

        store = BotWireStore(Memory("agent-memories"), ttl={"default_ttl": 60 * 24})
        store.put(("users", "alice"), "prefs", {"language": "fr", "tier": 2})
        store.get(("users", "alice"), "prefs").value        # {'language': 'fr', 'tier': 2}
        store.search(("users",), filter={"tier": {"$gte": 2}})
        graph = builder.compile(checkpointer=saver, store=store)
    """

    __slots__ = ("_amemory", "_memory", "_owns_memory", "ttl_config")

    supports_ttl: bool = True

    def __init__(
        self,
        memory: Memory | AsyncMemory | None = None,
        *,
        namespace: str = "langgraph-store",
        url: str | None = None,
        token: str | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        self._owns_memory = memory is None
        if memory is None:
            memory = Memory(namespace, url=url, token=token)
        if isinstance(memory, Memory):
            self._memory: Memory | None = memory
            self._amemory: AsyncMemory | None = None
        elif isinstance(memory, AsyncMemory):
            self._memory = None
            self._amemory = memory
        else:
            raise TypeError(
                f"BotWireStore needs a botwire Memory or AsyncMemory, got "
                f"{type(memory).__name__}; e.g. BotWireStore(Memory('langgraph-store'))"
            )
        self.ttl_config = ttl

    @property
    def memory(self) -> Memory | AsyncMemory:
        """The botwire client this store uses."""
        return self._memory if self._memory is not None else self._amemory  # type: ignore[return-value]

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute ``GetOp``/``PutOp``/``SearchOp``/``ListNamespacesOp``s; results in op order."""
        if self._memory is None:
            raise TypeError(
                "this BotWireStore was built on an AsyncMemory, so only its async methods work "
                "(aget / aput / asearch / abatch); pass a botwire Memory for the sync ones"
            )
        return run_sync(self._memory, batch_plan(ops, self.ttl_config))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch`, on ``AsyncMemory`` natively."""
        if self._amemory is None:
            assert self._memory is not None
            self._amemory = self._memory.as_async()
        return await run_async(self._amemory, batch_plan(ops, self.ttl_config))

    def close(self) -> None:
        """Close the client this store created itself."""
        if self._owns_memory and self._memory is not None:
            self._memory.close()
