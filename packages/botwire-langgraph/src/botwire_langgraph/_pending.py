"""Pending writes that ride with the checkpoint put after them (issue 22).

LangGraph saves a finished task's writes (``put_writes``) in the background, and the step's
checkpoint (``put``) once every task of the step has finished, also in the background (it
waits only for the writes of delta channels; with ``durability="sync"`` the next step waits for
the put). Sent apart, that is two requests a step. Here a task's writes wait in this process
for at most ``linger`` seconds: a ``put`` of their checkpoint's child that comes in time
carries them in its own atomic batch (one request a step); otherwise a background flush sends
them alone, as before (a sibling task still running, say a slow tool call). Writes that come
*after* their checkpoint's child was put (LangGraph's two background saves ran out of order)
are late: no put may follow (it was the run's last step), so they are sent at once, as before.

Never delayed: writes on LangGraph's special channels (an error, an interrupt, a resume: the run
may stop right after them and nothing else would carry them); writes once ``MAX_ITEMS`` or
``MAX_BYTES`` wait; and all waiting writes before any read or maintenance call of the saver (so a
saver reads its own writes), on ``close`` and at the interpreter's exit. A forked child drops
what its parent holds (the parent sends it).

Example::

    pending = PendingWrites(0.01, send=store)   # store(taken) saves {ref: [item, ...]}
    if pending.add(ref, item, size) is None:   # refused: send it now
        ...
    ops = writes_ops({ref: pending.take(ref)})  # into the next put's batch
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, get_checkpoint_id
from langgraph.checkpoint.serde.base import SerializerProtocol

from botwire import Closed

from . import _keys as K
from ._io import TxOp
from ._serde import dump_value, pack_sized

__all__ = [
    "MAX_BYTES",
    "MAX_ITEMS",
    "Item",
    "Items",
    "PendingWrites",
    "Ref",
    "Taken",
    "backoff",
    "writes_item",
    "writes_ops",
]

Ref = tuple[str, str, str]  # (thread_id, checkpoint_ns, checkpoint_id)
Item = dict[str, Any]  # one put_writes call, as stored
Items = list[Item]
Taken = dict[Ref, Items]

#: Writes held at once (the batch that carries them stays far inside a server's limits).
MAX_ITEMS = 64
MAX_BYTES = 256 * 1024
_IDLE = 1.0  # seconds a flusher thread waits for work before it ends
_TICK = 0.005  # its shortest look interval
_SUPERSEDED_MAX = 10_000  # threads whose last put is remembered (late writes: ``add``)
_RETRY_MAX = 1.0  # seconds between attempts when a background flush fails


def backoff(previous: float) -> float:
    """The wait before the next try of a background flush that failed after ``previous``
    seconds' wait: doubled, at least 50 ms, at most :data:`_RETRY_MAX`."""
    return min(max(previous * 2, 0.05), _RETRY_MAX)


log = logging.getLogger("botwire_langgraph")


def writes_item(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> tuple[Ref, dict[str, Any], int, bool] | None:
    """One ``put_writes`` call as its stored list item: ``(ref, item, approximate JSON bytes,
    whether it must be sent now)``; ``None`` when there is nothing to store."""
    thread_id, ns = K.thread_and_ns(config)
    cid = get_checkpoint_id(config)
    if not cid:
        raise ValueError("put_writes needs config['configurable']['checkpoint_id']")
    if not writes:
        return None
    ref = (thread_id, ns, str(cid))
    # one list item per call (not per write): {"t": task, "p": path, "w": [[idx, ch, v]]}
    item, size = pack_sized(
        {
            "t": task_id,
            "p": task_path,
            "w": [
                [WRITES_IDX_MAP.get(channel, idx), channel, dump_value(serde, value)]
                for idx, (channel, value) in enumerate(writes)
            ],
        }
    )
    urgent = any(channel in WRITES_IDX_MAP for channel, _ in writes)
    return ref, item, size, urgent


def writes_ops(taken: Taken) -> list[TxOp]:
    """The appends that store ``taken`` (one per checkpoint, its items in call order)."""
    return [("append", K.writes_key(*ref), items) for ref, items in taken.items() if items]


class PendingWrites:
    """Writes waiting to ride with a ``put`` (see module); safe to share between threads.

    ``send`` stores taken writes synchronously; with it, a daemon thread sends
    what waited ``linger`` seconds. Without it (an async-only saver) the caller arms its own
    timer when :meth:`add` says the wait began, and calls :meth:`take_all`.

    Example::

        pending = PendingWrites(0.01, send=store_ops)
        first = pending.add(ref, item, size)   # None: full, send now; True: a wait began
        ops = writes_ops({ref: pending.take(ref)})
    """

    def __init__(self, linger: float, send: Callable[[Taken], None] | None) -> None:
        self.linger = linger
        self._send = send
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._items: Taken = {}
        self._bytes = 0
        self._count = 0
        self._deadline: float | None = None
        self._inflight: dict[Ref, threading.Event] = {}
        self._thread: threading.Thread | None = None
        #: (thread id, checkpoint ns) -> the newest checkpoint a child was put of
        self._superseded: dict[tuple[str, str], str] = {}

    def __bool__(self) -> bool:
        return bool(self._items or self._inflight)

    def add(self, ref: Ref, item: dict[str, Any], size: int) -> bool | None:
        """Hold ``item``: ``None`` when it may not wait (full, or late: a child of its
        checkpoint was put already, and no put may follow), else whether a wait began."""
        with self._lock:
            if self._count >= MAX_ITEMS or self._bytes + size > MAX_BYTES:
                return None
            last = self._superseded.get(ref[:2])
            if last is not None and ref[2] <= last:
                return None
            self._items.setdefault(ref, []).append(item)
            self._bytes += size
            self._count += 1
            if self._deadline is not None:
                return False
            self._deadline = time.monotonic() + self.linger
            self._watch()
            return True

    def holds(self, ref: Ref) -> bool:
        """Whether writes of ``ref`` wait here."""
        return ref in self._items

    def in_flight(self, ref: Ref | None = None) -> bool:
        """Whether a flush of ``ref`` (any, when ``None``) is being sent."""
        inflight = self._inflight
        return bool(inflight) if ref is None else ref in inflight

    def settle(self) -> None:
        """Wait for the flushes being sent (by other threads) to end."""
        while True:
            with self._lock:
                events = list(self._inflight.values())
            if not events:
                return
            for event in events:
                event.wait()

    def take(self, ref: Ref) -> list[dict[str, Any]]:
        """What waits for ``ref``, removed, as a child of ``ref`` is about to be put (after
        any flush of it in progress has ended, so a checkpoint is never stored before its
        parent's writes). From now on writes of ``ref`` or older checkpoints of its thread
        are late (:meth:`add`)."""
        while True:
            with self._lock:
                busy = self._inflight.get(ref)
                if busy is None:
                    thread = ref[:2]
                    last = self._superseded.get(thread)
                    if last is None or ref[2] > last:
                        if last is None and len(self._superseded) >= _SUPERSEDED_MAX:
                            self._superseded.clear()  # forgotten: a late write waits, harmless
                        self._superseded[thread] = ref[2]
                    items = self._items.pop(ref, [])
                    self._forget(items)
                    return items
            busy.wait()

    def take_all(self) -> Taken:
        """Everything that waits, removed and marked in flight until :meth:`done`."""
        with self._lock:
            taken, self._items = self._items, {}
            self._bytes = self._count = 0
            self._deadline = None
            for ref in taken:
                self._inflight.setdefault(ref, threading.Event())
            return taken

    @contextlib.contextmanager
    def sending(self, restore: Callable[[Taken], object] | None = None) -> Iterator[Taken]:
        """Everything that waits, taken for one send: put back ahead of newer writes (by
        ``restore``, else :meth:`restore`) if the send raises, its flight ended either way::

            with pending.sending() as taken:
                send(taken)
        """
        taken = self.take_all()
        try:
            yield taken
        except BaseException:
            (restore or self.restore)(taken)
            raise
        finally:
            self.done(taken)

    def done(self, taken: Taken) -> None:
        """End the flight of :meth:`take_all`'s ``taken``."""
        with self._lock:
            for ref in taken:
                event = self._inflight.pop(ref, None)
                if event is not None:
                    event.set()

    def restore(self, taken: Taken, delay: float | None = None) -> bool:
        """Put back writes that could not be sent (ahead of newer ones); whether a wait began."""
        with self._lock:
            for ref, items in taken.items():
                self._items[ref] = items + self._items.get(ref, [])
                self._count += len(items)
            began = self._deadline is None and bool(taken)
            if began:
                self._deadline = time.monotonic() + (self.linger if delay is None else delay)
                self._watch()
            return began

    def _watch(self) -> None:
        """Start the flusher thread if there is none (the caller holds the lock)."""
        if self._send is not None and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(
                target=self._run, name="botwire-langgraph-writes", daemon=True
            )
            self._thread.start()

    def _forget(self, items: list[dict[str, Any]]) -> None:
        self._count -= len(items)
        if not self._items:  # nothing left to wait for: the flusher need not wake
            self._bytes = self._count = 0
            self._deadline = None

    def flush(self) -> None:
        """Send everything that waits now (``send`` must be set); errors propagate and the
        writes stay pending."""
        with self.sending() as taken:
            if taken:
                assert self._send is not None
                self._send(taken)

    def _run(self) -> None:
        """The flusher thread: looks every ``linger`` (at least ``_TICK``) for writes that
        waited their linger out and sends them; ends after ``_IDLE`` with nothing waiting.

        It polls rather than being woken by :meth:`add`: in a graph the step's put takes the
        writes well within the linger, so a wake-up per step would be pure cost (a futex call
        and a thread switch on the graph's critical path, measured)."""
        tick = max(self.linger, _TICK)
        retry = self.linger
        idle_since = time.monotonic()
        while True:
            time.sleep(tick)
            with self._lock:
                now = time.monotonic()
                due = self._deadline is not None and now >= self._deadline and self._items
                if self._deadline is None and not self._items and now - idle_since >= _IDLE:
                    self._thread = None
                    return
                if self._deadline is not None or self._items:
                    idle_since = now
            if not due:
                continue
            taken = self.take_all()
            try:
                if taken:
                    assert self._send is not None
                    self._send(taken)
                retry = self.linger
            except Closed as exc:  # the client was closed under them: nothing can send them
                log.warning(
                    "botwire-langgraph: pending writes of %d checkpoint(s) dropped: %s",
                    len(taken),
                    exc,
                )
            except Exception as exc:  # kept, and sent by the next put, read or retry
                retry = backoff(retry)
                log.warning(
                    "botwire-langgraph: pending writes of %d checkpoint(s) not saved yet (%s); "
                    "retrying in %.2f s",
                    len(taken),
                    exc,
                    retry,
                )
                self.restore(taken, delay=retry)
            finally:
                self.done(taken)


_LIVE: weakref.WeakSet[PendingWrites] = weakref.WeakSet()


def _forget_in_child() -> None:
    """A forked child starts empty: what the parent held is the parent's to send (its lock
    may also have been held at the fork, and its flusher thread is not in the child)."""
    for pending in list(_LIVE):
        pending._reset()


os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def _flush_at_exit() -> None:
    """A script that ends with writes still waiting sends them (sync savers)."""
    for pending in list(_LIVE):
        if pending and pending._send is not None:
            try:
                pending.flush()
            except Exception as exc:  # nothing left to raise to
                log.warning("botwire-langgraph: pending writes lost at exit: %s", exc)
