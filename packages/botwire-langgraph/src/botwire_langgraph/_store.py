"""``BotWireStore``: LangGraph's long-term memory store on botwire."""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.store.base import BaseStore, Op, Result, TTLConfig

from botwire import AsyncMemory, Memory
from botwire.integration import MemoryPair

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
    no vector index: ``search(query=...)`` ignores ``query`` (results by ``filter``, newest
    first, ``score`` None), as LangGraph's own stores do when built without an index.

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

    __slots__ = ("_clients", "ttl_config")

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
        self._clients = MemoryPair(
            None,
            memory,
            url=url,
            token=token,
            default_namespace=namespace,
            adapter="BotWireStore",
        )
        self.ttl_config = ttl

    @property
    def memory(self) -> Memory | AsyncMemory:
        """The botwire client this store uses."""
        return self._clients.sync if self._clients.has_sync else self._clients.aio

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute ``GetOp``/``PutOp``/``SearchOp``/``ListNamespacesOp``s; results in op order."""
        return run_sync(self._clients.sync, batch_plan(ops, self.ttl_config))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch`, on ``AsyncMemory`` natively."""
        return await run_async(self._clients.aio, batch_plan(ops, self.ttl_config))

    def close(self) -> None:
        """Close the client this store created itself."""
        self._clients.close()
