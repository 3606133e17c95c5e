"""Group commit of the writes that arrive together, for a store offering ``batch_group``
(SQLite: ``botwire.store._sqlitegroup``).

Every write request waits for the ``COMMIT`` of its own transaction; on SQLite the
``BEGIN IMMEDIATE``/``COMMIT`` pair is about half of a one-key write's cost (issue 22). So a write
is not run at once: it joins the group of writes collected on the event loop, and the group runs
as one transaction when the loop turns (inline store: the writes that arrived in the same loop
iteration) or when the previous group's commit is done (thread-pool store: the writes that came
meanwhile, the classic group commit). Each write has its savepoint, so one request's error undoes
only its own changes; each request is answered after the shared ``COMMIT``, never before; a
write's versions follow the order in which the writes joined, which is the commit order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botwire.store import Op

__all__ = ["MAX_GROUP", "WriteGroups", "as_exception", "settle"]

#: Writes per transaction at most: a group holds the event loop (inline) or SQLite's write lock
#: for its whole length; 32 one-key writes take ~2.5 ms (measured, development machine).
MAX_GROUP = 32

_Call = tuple[str, Sequence[Op], bool, "str | None"]
_Outcome = list[dict[str, Any]] | Exception


class WriteGroups:
    """Collects ``batch`` calls into groups run by ``store.batch_group``.

    ``to_thread`` set: groups run in a worker thread, one at a time (writes arriving meanwhile
    form the next group); ``None``: on the event loop, scheduled with ``call_soon``.

    Example::

        groups = WriteGroups(store.batch_group, to_thread=None)
        results = await groups.batch("user-42", [Op("set", "k", value="1")], True, None)
    """

    def __init__(
        self,
        run_group: Callable[[Sequence[_Call]], list[_Outcome]],
        *,
        to_thread: Callable[[Callable[[], list[_Outcome]]], Awaitable[list[_Outcome]]] | None,
    ) -> None:
        self._run_group = run_group
        self._to_thread = to_thread
        self._pending: list[tuple[_Call, asyncio.Future[list[dict[str, Any]]]]] = []
        self._scheduled = False
        self._flusher: asyncio.Task[None] | None = None
        #: groups run and writes in them (for the benchmark's figures and tests)
        self.groups = 0
        self.writes = 0

    async def batch(
        self, namespace: str, ops: Sequence[Op], atomic: bool, idempotency_key: str | None
    ) -> list[dict[str, Any]]:
        """The batch's results once the group holding it committed (or its own error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        self._pending.append(((namespace, ops, atomic, idempotency_key), future))
        if self._to_thread is None:
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush_inline)
        elif self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_threaded())
        # A cancelled request (client gone) does not withdraw its write: as with a write run
        # inline, once accepted it is applied; only the answer is lost (the client retries
        # with its Idempotency-Key).
        return await future

    def _take(self) -> list[tuple[_Call, asyncio.Future[list[dict[str, Any]]]]]:
        group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
        return group

    def _flush_inline(self) -> None:
        self._scheduled = False
        group = self._take()
        if self._pending:  # more than one group's worth: the rest on the next turn
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_inline)
        try:
            outcomes = self._run_group([call for call, _ in group])
        except BaseException as exc:  # a bug or an interrupt: every caller learns of it
            self._settle(group, [as_exception(exc)] * len(group))
            if not isinstance(exc, Exception):
                raise
            return
        self._settle(group, outcomes)

    async def _flush_threaded(self) -> None:
        assert self._to_thread is not None
        while self._pending:
            group = self._take()
            calls = [call for call, _ in group]
            try:
                outcomes = await self._to_thread(functools.partial(self._run_group, calls))
            except Exception as exc:
                outcomes = [exc] * len(group)
            self._settle(group, outcomes)

    def _settle(
        self,
        group: list[tuple[_Call, asyncio.Future[list[dict[str, Any]]]]],
        outcomes: list[_Outcome],
    ) -> None:
        self.groups += 1
        self.writes += len(group)
        settle([future for _, future in group], outcomes)


def settle(futures: Sequence[asyncio.Future[Any]], outcomes: Sequence[Any]) -> None:
    """Answer each waiting caller with its outcome: an exception is raised to it, anything else
    returned; a caller that gave up meanwhile (its future cancelled) is skipped."""
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.done():  # its request was cancelled meanwhile
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def as_exception(exc: BaseException) -> Exception:
    """``exc``, or for an interrupt (not an ``Exception``) one that says so, for the callers."""
    return exc if isinstance(exc, Exception) else RuntimeError(f"write group interrupted: {exc!r}")
