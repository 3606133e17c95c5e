"""``BotWireSaver``: a LangGraph checkpointer on botwire memory."""

from __future__ import annotations

import asyncio
import math
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
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

from botwire import AsyncMemory, Closed, Memory
from botwire.integration import MemoryPair

from . import _checkpoint_plans as P
from . import _keys as K
from . import _maintenance_plans as M
from ._io import Plan, run_async, run_sync
from ._pending import Item, Items, PendingWrites, Ref, Taken, backoff, log, writes_item

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
    checkpoint costs two round trips and saving one costs one, however long the history; a
    task's writes ride with the step's checkpoint when it follows within ``writes_linger``
    (one request a step), else they are sent on their own.
    Sync methods (``invoke``/``stream``) use a :class:`botwire.Memory`; async ones
    (``ainvoke``/``astream``) use an :class:`botwire.AsyncMemory` natively.

    Args:
        memory: the botwire client to use. A ``Memory`` serves both sync and async calls (async
            through ``memory.as_async()``); an ``AsyncMemory`` serves async calls only. When
            omitted, ``Memory(namespace, url=url, token=token)`` is created (``BOTWIRE_URL``
            and ``BOTWIRE_TOKEN`` apply).
        namespace: botwire namespace used when ``memory`` is omitted.
        url, token: backend and bearer token used when ``memory`` is omitted.
        serde: LangGraph serializer; defaults to ``JsonPlusSerializer``. Any other (an
            ``EncryptedSerializer``) gets every value, metadata included; ids, channel names
            and versions stay readable (docs/langgraph.md, "Encrypting serde").
        writes_linger: seconds a finished task's writes may wait in this process for the
            step's checkpoint, to be stored in its batch (default 0.01; at most 1). Errors,
            interrupts and every read, ``close`` and exit send them at once; ``0`` sends each
            task's writes as it ends, as LangGraph's own savers do.

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
        writes_linger: float = 0.01,
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
        # (thread, checkpoint ns) -> the "latest" pointer this saver last wrote or read there:
        # get_tuple then reads it and what it names in one round trip (_checkpoint_plans)
        self._latest: P.Known = {}
        self._pending = PendingWrites(
            _linger(writes_linger), _sender(self) if self._clients.has_sync else None
        )
        self._timers: set[asyncio.Task[None]] = set()  # an async-only saver's flushes
        self._retry: float | None = None  # its delay before the next try after a failure

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

    def _forget(self) -> None:
        """What this saver remembers of threads (runs marked, "latest" pointers): a
        maintenance plan may delete or rewrite them."""
        self._marked.clear()
        self._latest.clear()

    def _maintain(self, plan: Plan[None]) -> None:
        """Run a maintenance plan. It may delete run markers, so this saver forgets which runs
        it marked (before and after: a put racing with it marks again), and the pointers it
        knows (each is checked when used; forgetting keeps none of a deleted thread)."""
        self._flush()
        self._forget()
        try:
            self._sync(plan)
        finally:
            self._forget()

    async def _amaintain(self, plan: Plan[None]) -> None:
        """Async :meth:`_maintain`."""
        await self._aflush()
        self._forget()
        try:
            await self._async(plan)
        finally:
            self._forget()

    def close(self) -> None:
        """Send the writes that wait, then close the clients this saver created itself (a
        passed-in client stays open)."""
        try:
            if self._clients.has_sync:
                self._flush()
        finally:
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
        try:
            await self._aflush()
        finally:
            await self._clients.aclose()

    # -- sync interface -----------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (its ``checkpoint_id``, else the thread's latest)."""
        self._flush()
        return self._sync(P.get_tuple_plan(self.serde, config, self._latest))

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
        self._flush()
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
        """Save a checkpoint, with its parent's writes that wait (one atomic round trip);
        returns its config."""
        ref = _parent_ref(config)
        waiting: Items = []
        if ref is not None and self._pending.linger:
            if not self._pending.holds(ref):
                # LangGraph submits the step's put_writes and then this put to its background
                # threads, which run in either order: giving up the GIL once lets a put_writes
                # that waits for it arrive first and ride here (measured: half of P10's writes
                # came late without it, 1% with it); one that comes late is sent on its own.
                time.sleep(0)
            waiting = self._pending.take(ref)
        try:
            return self._sync(self._put_plan(config, checkpoint, metadata, new_versions, waiting))
        except BaseException:
            if waiting:
                assert ref is not None
                self._pending.restore({ref: waiting})
            raise

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes against the checkpoint in ``config``: they wait (at most
        ``writes_linger``) to ride with the next checkpoint, else one round trip."""
        found = writes_item(self.serde, config, writes, task_id, task_path)
        if found is None:
            return
        ref, item, size, urgent = found
        if not urgent and self._pending.linger and self._pending.add(ref, item, size) is not None:
            return
        # what waits is sent with it (LangGraph may stop after an error); on failure it waits
        # again, and the caller's own write is the caller's error
        with self._pending.sending() as taken:
            self._sync(P.store_writes_plan(_with(taken, ref, item)))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and blob of a thread (all checkpoint namespaces)."""
        self._maintain(M.delete_thread_plan(str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``."""
        self._maintain(M.delete_for_runs_plan(self.serde, list(run_ids)))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy all checkpoints, writes and blobs of one thread to another."""
        self._maintain(M.copy_thread_plan(str(source_thread_id), str(target_thread_id)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep only each namespace's newest checkpoint (and the blobs it
        uses); ``delete``: delete the threads."""
        self._maintain(M.prune_plan(self.serde, [str(t) for t in thread_ids], strategy))

    # -- async interface ----------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        await self._aflush()
        return await self._async(P.get_tuple_plan(self.serde, config, self._latest))

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
        await self._aflush()
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
        ref = _parent_ref(config)
        waiting: Items = []
        if ref is not None and self._pending.linger:
            if not self._pending.holds(ref):
                await asyncio.sleep(0)  # as in put: an aput_writes task ready to run goes first
            while self._pending.in_flight(ref):  # a flush on this loop: never block it
                await asyncio.sleep(0.0005)
            waiting = self._pending.take(ref)
        try:
            plan = self._put_plan(config, checkpoint, metadata, new_versions, waiting)
            return await self._async(plan)
        except BaseException:
            if waiting:
                assert ref is not None
                self._restore_async({ref: waiting})
            raise

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        found = writes_item(self.serde, config, writes, task_id, task_path)
        if found is None:
            return
        ref, item, size, urgent = found
        if not urgent and self._pending.linger:
            began = self._pending.add(ref, item, size)
            if began is not None:
                if began and not self._clients.has_sync:
                    self._arm(self._pending.linger)
                return
        while self._pending.in_flight():
            await asyncio.sleep(0.0005)
        with self._pending.sending(self._restore_async) as taken:
            await self._async(P.store_writes_plan(_with(taken, ref, item)))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._amaintain(M.delete_thread_plan(str(thread_id)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await self._amaintain(M.delete_for_runs_plan(self.serde, list(run_ids)))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self._amaintain(M.copy_thread_plan(str(source_thread_id), str(target_thread_id)))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await self._amaintain(M.prune_plan(self.serde, [str(t) for t in thread_ids], strategy))

    # -- writes that wait (``_pending``) -------------------------------------------------

    def _put_plan(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        waiting: Items,
    ) -> Plan[RunnableConfig]:
        return P.put_plan(
            self.serde,
            config,
            checkpoint,
            metadata,
            new_versions,
            self._marked,
            waiting,
            self._latest,
        )

    def _flush(self) -> None:
        """Send every write that waits (before a read: a saver reads its own writes)."""
        if self._pending:
            self._pending.settle()
            with self._pending.sending() as taken:
                self._sync(P.store_writes_plan(taken))

    async def _aflush(self) -> None:
        """Async :meth:`_flush`."""
        if not self._pending:
            return
        while self._pending.in_flight():
            await asyncio.sleep(0.0005)
        with self._pending.sending(self._restore_async) as taken:
            await self._async(P.store_writes_plan(taken))

    def _restore_async(self, taken: Taken) -> None:
        delay = self._pending.linger if self._retry is None else self._retry
        if self._pending.restore(taken, delay) and not self._clients.has_sync:
            self._arm(delay)

    def _arm(self, delay: float) -> None:
        """An async-only saver's flush of the writes that wait, ``delay`` seconds from now on
        the running loop (a saver with a sync client has a flusher thread instead)."""
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._start_flush, loop)

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._timed_flush())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _timed_flush(self) -> None:
        """An async-only saver's flush when the linger ran out. A failure keeps the writes:
        ``_aflush`` put them back and armed the next try, later each time (up to 1 s)."""
        try:
            await self._aflush()
            self._retry = None
        except Closed as exc:  # the client was closed under them: nothing can send them
            dropped = self._pending.take_all()
            self._pending.done(dropped)
            log.warning("botwire-langgraph: pending writes dropped: %s", exc)
        except Exception as exc:
            self._retry = backoff(self._retry or 0)
            log.warning("botwire-langgraph: pending writes not saved yet (%s); retrying", exc)

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


def _linger(value: object) -> float:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    ):
        return float(value)
    raise ValueError(
        f"BotWireSaver(writes_linger={value!r}): it is how long (seconds) a task's writes may "
        "wait for the step's checkpoint and must be a number from 0 to 1; use 0 to send each "
        "task's writes at once"
    )


def _parent_ref(config: RunnableConfig) -> Ref | None:
    parent = (config.get("configurable") or {}).get("checkpoint_id")
    return (*K.thread_and_ns(config), str(parent)) if parent else None


def _with(taken: Taken, ref: Ref, item: Item) -> Taken:
    out = {r: list(items) for r, items in taken.items()}
    out.setdefault(ref, []).append(item)
    return out


def _sender(saver: BotWireSaver) -> Callable[[Taken], None]:
    """The flusher thread's way to store writes, holding the saver weakly (the thread must
    not keep a dropped saver alive)."""
    ref = weakref.ref(saver)

    def send(taken: Taken) -> None:
        alive = ref()
        if alive is not None:
            alive._sync(P.store_writes_plan(taken))

    return send


def _chunks(
    refs: list[P.Ref], filter: dict[str, Any] | None, limit: int | None
) -> Iterator[list[P.Ref]]:
    """Without a filter, the first chunk holds exactly ``limit`` refs (one fetch)."""
    size = limit if (limit is not None and not filter) else _LIST_CHUNK
    size = max(1, min(size, 500))
    for i in range(0, len(refs), size):
        yield refs[i : i + size]
