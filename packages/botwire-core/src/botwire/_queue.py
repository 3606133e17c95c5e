"""``memory.queue(name)``: an at-least-once hand-off queue built over plain keys and atomic
batches, so it works on every backend (HTTP to a SQLite or PostgreSQL server, the embedded
store, a third-party store) with no server route of its own.

Layout under ``.botwire/queue/<name>/`` (ordinary keys: listed, counted and cleared with the
namespace; docs/coordination.md, "Queues"):

- ``i/<id>``: an item (its value), ``<id>`` = 14 hex digits of the putting client's clock in
  microseconds + 8 random hex digits, so a listing is approximately put order;
- ``i/<id>.c``: the *claim*, with TTL = the claim's visibility: while it lives nobody else claims
  the item; a crashed consumer's claim expires and the item is claimable again;
- ``i/<id>.h``: the *hold*, with TTL = a delay (``put(delay=)``, ``nack(delay=)``);
- ``i/<id>.n``: the claim counter, incremented in each claim's batch. Its version is the claim's
  version (one batch, one version), so it is the receipt: an ack checks it, and fails once
  another consumer claimed the item again;
- ``d/<id>``: a dead letter ``{"item", "claims"}``, moved there by the claim that found the
  counter past ``max_claims``;
- ``k/<idempotency key>``: a put's id, for 24 h, so a repeated put adds nothing.

Every time decision (visibility, delay) is a TTL, i.e. the store's clock; the client's clock
only orders ids and bounds ``claim(wait=)``. Commands are written once for :class:`Queue` and
:class:`AsyncQueue` (see :mod:`._memory`).
"""

from __future__ import annotations

import os
import time

from . import _common as c
from ._errors import ClaimExpired, Compacted, Conflict, InvalidArgument, TypeMismatch
from ._memory import AsyncRun, SyncRun, command
from ._record import record
from ._watch import MAX_CHANGES

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

    from ._async import AsyncMemory
    from ._memory import Memory, Returns

__all__ = ["AsyncQueue", "Claimed", "DeadItem", "Queue", "QueueStats"]

ID_LEN = 22  # 14 hex digits of microseconds + 8 random hex digits
DEDUP_TTL = 86400.0  # seconds a put's idempotency key is remembered
# Keys per listing page while looking for claimable items: the first page is small (the front
# of a queue holds few claimed items), the next ones grow (many consumers, many in flight).
PAGE_FIRST, PAGE = 24, 400
CANDIDATES = 8  # under contention, pick at random among this many claimable items
WAIT_FIRST, WAIT_MAX = 0.05, 0.5  # claim(wait=) polling backoff, seconds
# Listings per claim before answering "nothing claimable": each lost race means another
# consumer took an item (progress), so this bounds only a pathological storm of them.
ROUNDS = 16
_HEX = frozenset("0123456789abcdef")


@record
class Claimed:
    """An item handed to one consumer until ``expires_at`` (the store's clock, epoch seconds).

    ``receipt`` is a string (``"<id>.<version>"``) that ``ack``/``nack`` take back, also from
    another process (the CLI prints it). ``claims`` counts deliveries, this one included: above
    1 the item was delivered before (a consumer crashed, timed out or nacked it).
    """

    id: str
    item: Any
    receipt: str
    claims: int
    expires_at: float | None = None


@record
class DeadItem:
    """An item moved to the dead letters after more than ``max_claims`` claims."""

    id: str
    item: Any
    claims: int


@record
class QueueStats:
    """Counts from one listing: ``ready`` to claim now, ``claimed`` (in flight), ``delayed``
    (held by ``put(delay=)``/``nack(delay=)``), ``dead`` letters."""

    ready: int
    claimed: int
    delayed: int
    dead: int


def _new_id() -> str:
    return f"{time.time_ns() // 1000:014x}{os.urandom(4).hex()}"


def _seconds(ns: str, name: str, what: str, value: Any, *, zero: bool) -> float | None:
    """A ``delay``/``visibility``/``wait`` argument: ``None``, or a finite number of seconds
    (> 0, or >= 0 when ``zero``)."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and c._finite(value) and (value >= 0 if zero else value > 0) and value < 1e9:
        return float(value)
    rule = ">= 0" if zero else "> 0"
    raise InvalidArgument(
        f"botwire: {what}={value!r} for queue {name!r} in namespace {ns!r}; use a number of "
        f"seconds {rule}" + ("" if zero else " (or omit it)") + ".",
        namespace=ns,
    )


def check_queue_name(ns: str, name: Any) -> str:
    """A queue name: 1-200 characters, no ``/``, no control characters (it is a key segment)."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 200
        or "/" in name
        or not name.isprintable()
    ):
        raise InvalidArgument(
            f"botwire: queue name {name!r} in namespace {ns!r}; use 1 to 200 printable "
            "characters without '/', e.g. 'jobs' or 'summaries-v2'.",
            namespace=ns,
        )
    return name


class _QueueBase:
    """The commands of :class:`Queue` and :class:`AsyncQueue` (one definition each)."""

    _memory: Any  # the Memory or AsyncMemory whose store holds the queue

    def __init__(self, memory: Any, name: str, max_claims: int = 5) -> None:
        ns = memory.namespace
        self.name = check_queue_name(ns, name)
        if isinstance(max_claims, bool) or not isinstance(max_claims, int) or max_claims < 1:
            raise InvalidArgument(
                f"botwire: max_claims={max_claims!r} for queue {name!r} in namespace {ns!r}; "
                "use a whole number >= 1 (claims before an item moves to the dead letters).",
                namespace=ns,
            )
        self.max_claims = max_claims
        self._memory = memory
        self._ns = ns
        self._root = f"{c.RESERVED_PREFIX}queue/{name}/"
        self._items = self._root + "i/"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._ns!r}, {self.name!r})"

    # -- keys and receipts ---------------------------------------------------------------------

    def _key(self, id: str, suffix: str = "") -> str:
        return f"{self._items}{id}{suffix}"

    def _receipt(self, claimed: Claimed | str) -> tuple[str, int]:
        """``(id, version)`` of a :class:`Claimed` or its ``receipt`` string."""
        receipt = claimed.receipt if isinstance(claimed, Claimed) else claimed
        if isinstance(receipt, str):
            id, _, version = receipt.partition(".")
            if len(id) == ID_LEN and set(id) <= _HEX and version.isdigit():
                return id, int(version)
        raise InvalidArgument(
            f"botwire: {receipt!r} is not a receipt of queue {self.name!r} in namespace "
            f"{self._ns!r}; pass the Claimed that claim() returned, or its .receipt string "
            "(<22 hex digits>.<version>).",
            namespace=self._ns,
        )

    def _scan_page(self, cursor: str | None, limit: int) -> Any:
        return self._memory._store.list_keys(
            self._ns, prefix=self._items, cursor=cursor, limit=limit
        )

    def _group(self, keys: list[Any], states: dict[str, dict[str, Any]]) -> None:
        """Fold listed keys into ``states``: id -> {"v": item version, "c"/"h"/"n": present}.
        Keys that are not ours (a hostile or mistaken write under the prefix) are ignored."""
        start = len(self._items)
        for info in keys:
            id, suffix = info.key[start : start + ID_LEN], info.key[start + ID_LEN :]
            if len(id) != ID_LEN or not set(id) <= _HEX or suffix not in ("", ".c", ".h", ".n"):
                continue
            state = states.setdefault(id, {"v": None})
            if suffix:
                state[suffix[1]] = True
            else:
                state["v"] = info.version

    # -- commands ------------------------------------------------------------------------------

    @command
    def put(
        self, item: Any, *, delay: float | None = None, idempotency_key: str | None = None
    ) -> Returns[str]:
        """Add ``item`` (any JSON value); returns its id. ``delay``: seconds before it can be
        claimed. ``idempotency_key`` (e.g. ``context.aws_request_id``): a repeated put with the
        same key within 24 h adds nothing and returns the first put's id."""
        ns = self._ns
        hold = _seconds(ns, self.name, "delay", delay, zero=False)
        ikey = c.check_idempotency_key(ns, idempotency_key)
        id = _new_id()
        ops = [c.op_set(ns, self._key(id), item)]
        if hold is not None:
            ops.append(c.op_set(ns, self._key(id, ".h"), True, ttl=hold))
        if ikey is not None:
            dedup = f"{self._root}k/{ikey}"
            ops.insert(0, c.op_set(ns, dedup, id, ttl=DEDUP_TTL, if_absent=True))
        try:
            yield self._memory._store.batch(ns, ops, atomic=True)
        except Conflict as exc:
            if ikey is None or exc.key != dedup:
                raise
            first = yield self._memory._store.get(ns, dedup)
            if first is None:  # expired between the two calls: put afresh
                return (yield from _QueueBase.put(self, item, delay=delay, idempotency_key=ikey))
            first_id: str = first.value
            return first_id
        return id

    def _claim_once(self, visibility: float) -> Returns[Claimed | None]:
        """One pass: list, then claim the first claimable item (a random one of the first few
        after a lost race); ``None`` when nothing is claimable now."""
        store, ns = self._memory._store, self._ns
        contended = False
        for _ in range(ROUNDS):
            states: dict[str, dict[str, Any]] = {}
            cursor, limit = None, PAGE_FIRST
            while True:
                page = yield self._scan_page(cursor, limit)
                limit = min(limit * 4, PAGE)
                self._group(page.keys, states)
                cursor = page.cursor
                ready = [
                    (id, s["v"])
                    for id, s in states.items()
                    if s["v"] is not None and not s.get("c") and not s.get("h")
                ]
                if cursor is not None and ready and ready[-1][0] == next(reversed(states)):
                    ready.pop()  # its claim or hold may be on the next page
                if cursor is None or len(ready) >= CANDIDATES:
                    break
            if not ready:
                return None
            while ready:
                # os.urandom, not random: importing random costs a cold start ~1 ms
                pick = os.urandom(1)[0] % min(len(ready), CANDIDATES) if contended else 0
                id, version = ready.pop(pick)
                item_key, claim_key = self._key(id), self._key(id, ".c")
                ops = [
                    c.op_check(ns, item_key, version),
                    c.op_check(ns, claim_key, None),
                    c.op_check(ns, self._key(id, ".h"), None),
                    c.op_set(ns, claim_key, True, ttl=visibility),
                    c.op_incr(ns, self._key(id, ".n"), 1),
                    c.op_get(ns, item_key),
                    c.op_get(ns, claim_key),
                ]
                try:
                    res = yield store.batch(ns, ops, atomic=True)
                except Conflict:
                    contended = True  # another consumer won it: try another item
                    continue
                except TypeMismatch as exc:  # .n is not a number: not written by a queue
                    raise self._corrupt(id, exc) from None
                claim_version, claims = res[3]["version"], int(res[4]["value"])
                if claims > self.max_claims:
                    yield from self._bury(id, claim_version, res[5]["value"], claims - 1)
                    continue
                return Claimed(
                    id, res[5]["value"], f"{id}.{claim_version}", claims, res[6]["expires_at"]
                )
        return None

    def _corrupt(self, id: str, exc: TypeMismatch) -> TypeMismatch:
        counter = self._key(id, ".n")
        return TypeMismatch(
            f"botwire: item {id} of queue {self.name!r} in namespace {self._ns!r} cannot be "
            f"claimed: its claim counter {counter!r} holds something other than a number, so "
            "something other than a queue wrote it. Delete that key (memory.delete(...)) to "
            f"make the item claimable again; the item itself is untouched. ({exc.message})",
            namespace=self._ns,
            key=counter,
        )

    def _bury(self, id: str, version: int, item: Any, claims: int) -> Returns[None]:
        """Move a poison item to the dead letters (we hold its claim: ``version``)."""
        ns = self._ns
        ops = [
            c.op_check(ns, self._key(id, ".n"), version),
            c.op_set(ns, f"{self._root}d/{id}", {"item": item, "claims": claims}),
            *(c.op_delete(ns, self._key(id, s)) for s in ("", ".c", ".h", ".n")),
        ]
        try:
            yield self._memory._store.batch(ns, ops, atomic=True)
        except Conflict:
            return None  # our claim expired and another consumer claimed it: its claim decides
        return None

    @command
    def claim(self, *, visibility: float = 30, wait: float = 0) -> Returns[Claimed | None]:
        """Claim the oldest claimable item for ``visibility`` seconds, or ``None``.

        Until :meth:`ack`, nobody else gets the item; if you neither ack nor nack in time (a
        crash, a frozen function) it is delivered again, so make the work idempotent.
        ``wait`` > 0 waits up to that many seconds for an item (a put, an expired claim, a
        delay ending). An item claimed more than ``max_claims`` times moves to :meth:`dead`.
        """
        ns = self._ns
        seconds = _seconds(ns, self.name, "visibility", visibility, zero=False)
        patience = _seconds(ns, self.name, "wait", wait, zero=True) or 0.0
        assert seconds is not None
        deadline = time.monotonic() + patience
        pause = WAIT_FIRST
        seen: list[int | None] = [None]  # the version the queue's change feed is followed from
        while True:
            claimed = yield from self._claim_once(seconds)
            left = deadline - time.monotonic()
            if claimed is not None or left <= 0:
                return claimed
            yield from self._idle(min(pause, left), seen)
            pause = min(pause * 2, WAIT_MAX)

    def _idle(self, seconds: float, seen: list[int | None]) -> Returns[None]:
        """Wait up to ``seconds`` for the queue's items to change: on the store's change feed
        (``SupportsChanges``: a server long-poll, the SQLite file's ``data_version``), so a put
        wakes a waiting claim at once; a plain sleep on a store without one. ``seconds`` stays
        <= ``WAIT_MAX`` either way: a claim's or hold's TTL running out writes nothing the feed
        would report. ``seen[0]`` carries the feed's resume version between calls."""
        changes = getattr(self._memory._store, "changes", None)
        if changes is None:
            yield self._memory._sleep(seconds)
            return None
        ns, started = self._ns, time.monotonic()
        try:
            if seen[0] is None:  # where the feed stands now (a put after this wakes us)
                now = yield changes(ns, prefix=self._items, after=None, limit=MAX_CHANGES)
                seen[0] = now.version
            left = max(0.0, seconds - (time.monotonic() - started))
            found = yield changes(
                ns, prefix=self._items, after=seen[0], limit=MAX_CHANGES, wait=left
            )
            seen[0] = max(seen[0], found.version)
        except Compacted:  # followed from too far back (a long pause): start again from now
            seen[0] = None
        return None

    def _late(self, what: str, id: str) -> Returns[ClaimExpired]:
        """The error of an ack/nack whose claim was lost, saying why (one read, on failure)."""
        entry = yield self._memory._store.get(self._ns, self._key(id))
        why = (
            "the item is no longer in the queue (acked already, moved to the dead letters, or "
            "the receipt belongs to another queue)"
            if entry is None
            else "your claim expired and another consumer claimed the item again"
        )
        return ClaimExpired(
            f"botwire: {what} of item {id} in queue {self.name!r} (namespace {self._ns!r}) came "
            f"too late: {why}, so it may be processed twice. Keep the work idempotent, and claim "
            "with a visibility= longer than the work takes.",
            namespace=self._ns,
            key=self._key(id),
        )

    @command
    def ack(self, claimed: Claimed | str) -> Returns[None]:
        """Remove a claimed item for good (pass the :class:`Claimed` or its ``receipt``).

        Raises :class:`~botwire.ClaimExpired` (a ``Conflict``) when the item was claimed again
        after this claim expired: it may be processed twice. An ack after the claim expired but
        before anyone claimed the item again still succeeds.
        """
        id, version = self._receipt(claimed)
        ns = self._ns
        ops = [c.op_check(ns, self._key(id, ".n"), version)]
        ops += [c.op_delete(ns, self._key(id, s)) for s in ("", ".c", ".h", ".n")]
        try:
            yield self._memory._store.batch(ns, ops, atomic=True)
        except Conflict:
            raise (yield from self._late("ack", id)) from None

    @command
    def nack(self, claimed: Claimed | str, *, delay: float | None = None) -> Returns[None]:
        """Give a claimed item back: claimable again at once, or after ``delay`` seconds. It
        keeps its place and its claim count (``max_claims`` counts nacked deliveries too)."""
        id, version = self._receipt(claimed)
        ns = self._ns
        hold = _seconds(ns, self.name, "delay", delay, zero=False)
        ops = [c.op_check(ns, self._key(id, ".n"), version), c.op_delete(ns, self._key(id, ".c"))]
        if hold is not None:
            ops.append(c.op_set(ns, self._key(id, ".h"), True, ttl=hold))
        try:
            yield self._memory._store.batch(ns, ops, atomic=True)
        except Conflict:
            raise (yield from self._late("nack", id)) from None

    def _listing(self, prefix: str) -> Returns[list[Any]]:
        keys: list[Any] = []
        cursor = None
        while True:
            page = yield self._memory._store.list_keys(self._ns, prefix=prefix, cursor=cursor)
            keys += page.keys
            cursor = page.cursor
            if cursor is None:
                return keys

    @command
    def stats(self) -> Returns[QueueStats]:
        """Ready, claimed, delayed and dead counts (lists the whole queue: O(items))."""
        states: dict[str, dict[str, Any]] = {}
        self._group((yield from self._listing(self._items)), states)
        start = len(self._root) + 2
        dead = [
            k
            for k in (yield from self._listing(self._root + "d/"))
            if len(k.key) - start == ID_LEN and set(k.key[start:]) <= _HEX
        ]
        live = [s for s in states.values() if s["v"] is not None]
        claimed = sum(1 for s in live if s.get("c"))
        delayed = sum(1 for s in live if s.get("h") and not s.get("c"))
        return QueueStats(len(live) - claimed - delayed, claimed, delayed, len(dead))

    @command
    def size(self) -> Returns[int]:
        """Items not yet acked (ready, claimed or delayed; dead letters not counted)."""
        s = yield from _QueueBase.stats(self)
        return s.ready + s.claimed + s.delayed

    @command
    def dead(self) -> Returns[list[DeadItem]]:
        """The dead letters, oldest first (items claimed more than ``max_claims`` times);
        remove one with ``memory.delete(f".botwire/queue/{name}/d/{id}")``."""
        prefix = self._root + "d/"
        out: list[DeadItem] = []
        for info in (yield from self._listing(prefix)):
            id = info.key[len(prefix) :]
            if len(id) != ID_LEN or not set(id) <= _HEX:
                continue  # not ours: a foreign key under the prefix
            entry = yield self._memory._store.get(self._ns, info.key)
            value = entry.value if entry is not None else None
            if isinstance(value, dict) and "claims" in value:
                out.append(DeadItem(id, value.get("item"), value["claims"]))
        return out


class Queue(_QueueBase, SyncRun):
    """An at-least-once hand-off queue in a :class:`~botwire.Memory`'s namespace.

    Example::

        jobs = Memory("pipeline").queue("jobs")
        jobs.put({"doc": "s3://bucket/report.pdf"})
        # in another function, maybe another machine:
        task = jobs.claim(visibility=60, wait=20)
        if task is not None:
            summarize(task.item)
            jobs.ack(task)  # not acked within 60 s: delivered again
    """

    def __init__(self, memory: Memory, name: str, *, max_claims: int = 5) -> None:
        super().__init__(memory, name, max_claims)

    def __len__(self) -> int:
        """``len(queue)``: :meth:`size`."""
        return self.size()

    def __bool__(self) -> bool:
        return True  # a handle, truthy even when empty


class AsyncQueue(_QueueBase, AsyncRun):
    """:class:`Queue` for an :class:`~botwire.AsyncMemory`: the same commands as coroutines.

    Example::

        jobs = AsyncMemory("pipeline").queue("jobs")
        task = await jobs.claim(visibility=60, wait=20)
        if task is not None:
            await jobs.ack(task)
    """

    def __init__(self, memory: AsyncMemory, name: str, *, max_claims: int = 5) -> None:
        super().__init__(memory, name, max_claims)
