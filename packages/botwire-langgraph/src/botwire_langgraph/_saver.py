"""``BotWireSaver``: a LangGraph checkpointer on botwire memory."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from botwire import AsyncMemory, Memory
from botwire.integration import MemoryPair

from . import _checkpoint_plans as P
from ._io import Plan, run_async, run_sync

__all__ = ["BotWireSaver"]

T = TypeVar("T")

_LIST_CHUNK = 100
_COUNTER_DIGITS = 12  # a new thread's version counter: 10^12 steps
_LEGACY_DIGITS = 32  # the counter of threads started before issue 22 (and PostgresSaver's)


class BotWireSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that keeps every thread in botwire, so a graph cut off mid-way
    (a Lambda timeout, a crash, a scale-to-zero) resumes from its last checkpoint in a fresh
    process, and nodes that had already finished are not run again (their pending writes are
    stored too).

    All threads live in one botwire namespace (default ``"langgraph"``). Reading the latest
    checkpoint costs two round trips and saving one costs one, however long the history.
    Sync methods (``invoke``/``stream``) use a :class:`botwire.Memory`; async ones
    (``ainvoke``/``astream``) use an :class:`botwire.AsyncMemory` natively.

    Args:
        memory: the botwire client to use. A ``Memory`` serves both sync and async calls (async
            through ``memory.as_async()``); an ``AsyncMemory`` serves async calls only. When
            omitted, ``Memory(namespace, url=url, token=token)`` is created (``BOTWIRE_URL``
            and ``BOTWIRE_TOKEN`` apply).
        namespace: botwire namespace used when ``memory`` is omitted.
        url, token: backend and bearer token used when ``memory`` is omitted.
        serde: LangGraph serializer; defaults to ``JsonPlusSerializer``.

    Example::

        from botwire import Memory
        from botwire_langgraph import BotWireSaver

        saver = BotWireSaver(Memory("langgraph", url="https://memory.example.com"))
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"messages": [...]}, {"configurable": {"thread_id": "order-42"}})
        # next invocation, any process: resumes thread "order-42" where it stopped
        graph.invoke(None, {"configurable": {"thread_id": "order-42"}})
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory | None = None,
        *,
        namespace: str = "langgraph",
        url: str | None = None,
        token: str | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self._clients = MemoryPair(
            None,
            memory,
            url=url,
            token=token,
            default_namespace=namespace,
            adapter="BotWireSaver",
        )
        # thread id -> the run this saver last marked in it: a run's markers are written by its
        # first put in this process, not by every put (see _checkpoint_plans.put_plan)
        self._marked: dict[str, str] = {}

    # -- plumbing -----------------------------------------------------------------------

    @property
    def memory(self) -> Memory | AsyncMemory:
        """The botwire client this saver writes to."""
        return self._clients.sync if self._clients.has_sync else self._clients.aio

    def _sync(self, plan: Plan[T]) -> T:
        if not self._clients.has_sync:
            plan.close()
        return run_sync(self._clients.sync, plan)  # an AsyncMemory only: a clear TypeError

    async def _async(self, plan: Plan[T]) -> T:
        return await run_async(self._clients.aio, plan)

    def _maintain(self, plan: Plan[None]) -> None:
        """Run a maintenance plan. It may delete run markers, so this saver forgets which runs
        it marked (before and after: a put racing with it marks again)."""
        self._marked.clear()
        try:
            self._sync(plan)
        finally:
            self._marked.clear()

    async def _amaintain(self, plan: Plan[None]) -> None:
        """Async :meth:`_maintain`."""
        self._marked.clear()
        try:
            await self._async(plan)
        finally:
            self._marked.clear()

    def close(self) -> None:
        """Close the clients this saver created itself (a passed-in client stays open)."""
        self._clients.close()

    def __enter__(self) -> BotWireSaver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> BotWireSaver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._clients.aclose()

    # -- sync interface -----------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (its ``checkpoint_id``, else the thread's latest)."""
        return self._sync(P.get_tuple_plan(self.serde, config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, optionally filtered by metadata, older than ``before``,
        at most ``limit``."""
        if limit is not None and limit <= 0:
            return
        refs = self._sync(P.list_refs_plan(config, filter=filter, before=before, limit=limit))
        remaining = limit
        for chunk in _chunks(refs, filter, limit):
            for tup in self._sync(
                P.fetch_tuples_plan(self.serde, chunk, filter=filter, limit=remaining)
            ):
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint (one atomic round trip); returns its config."""
        return self._sync(
            P.put_plan(self.serde, config, checkpoint, metadata, new_versions, self._marked)
        )

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes against the checkpoint in ``config`` (one round trip)."""
        self._sync(P.put_writes_plan(self.serde, config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and blob of a thread (all checkpoint namespaces)."""
        self._maintain(P.delete_thread_plan(str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``."""
        self._maintain(P.delete_for_runs_plan(self.serde, list(run_ids)))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy all checkpoints, writes and blobs of one thread to another."""
        self._maintain(P.copy_thread_plan(str(source_thread_id), str(target_thread_id)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep only each namespace's newest checkpoint (and the blobs it
        uses); ``delete``: delete the threads."""
        self._maintain(P.prune_plan(self.serde, [str(t) for t in thread_ids], strategy))

    # -- async interface ----------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        return await self._async(P.get_tuple_plan(self.serde, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        if limit is not None and limit <= 0:
            return
        refs = await self._async(
            P.list_refs_plan(config, filter=filter, before=before, limit=limit)
        )
        remaining = limit
        for chunk in _chunks(refs, filter, limit):
            tuples = await self._async(
                P.fetch_tuples_plan(self.serde, chunk, filter=filter, limit=remaining)
            )
            for tup in tuples:
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`."""
        return await self._async(
            P.put_plan(self.serde, config, checkpoint, metadata, new_versions, self._marked)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await self._async(P.put_writes_plan(self.serde, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._amaintain(P.delete_thread_plan(str(thread_id)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await self._amaintain(P.delete_for_runs_plan(self.serde, list(run_ids)))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self._amaintain(P.copy_thread_plan(str(source_thread_id), str(target_thread_id)))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await self._amaintain(P.prune_plan(self.serde, [str(t) for t in thread_ids], strategy))

    # -- versions -----------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Channel versions as ``"<counter>.<random>"`` strings: they sort as numbers (the
        counter has a fixed width within a thread) and make safe key components.

        A new thread gets a 12-digit counter and 8 random hex digits (issue 22: versions fill
        most of a checkpoint record, so they are kept short); a thread started before keeps
        the 32-digit counter it has, since LangGraph compares a thread's versions as strings."""
        if current is None:
            return f"{1:0{_COUNTER_DIGITS}}.{random.getrandbits(32):08x}"
        if isinstance(current, (int, float)):
            number, width = int(current), _LEGACY_DIGITS
        else:
            head = str(current).split(".", 1)[0]
            number, width = int(head), max(len(head), _COUNTER_DIGITS)
        if width == _LEGACY_DIGITS:  # the old format, random part and all
            return f"{number + 1:0{width}}.{random.random():016}"
        return f"{number + 1:0{width}}.{random.getrandbits(32):08x}"


def _chunks(
    refs: list[P.Ref], filter: dict[str, Any] | None, limit: int | None
) -> Iterator[list[P.Ref]]:
    """Without a filter, the first chunk holds exactly ``limit`` refs (one fetch)."""
    size = limit if (limit is not None and not filter) else _LIST_CHUNK
    size = max(1, min(size, 500))
    for i in range(0, len(refs), size):
        yield refs[i : i + size]
