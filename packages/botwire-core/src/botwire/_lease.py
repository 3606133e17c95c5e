"""``memory.lease(name)``: a lease with a fencing token, built in the client over atomic
batches (no server route, no schema: it works on every backend).

A lease is the key ``.botwire/lease/<name>`` (see ``RESERVED_PREFIX``), written with
``if_absent`` and a TTL: the store's TTL decides expiry (an expired lease is absent to the
store), never the client's clock. Its version is the fencing token: versions are store-wide
monotonic, so every acquisition and renewal gets a larger token than any before it, and a
fenced write, the atomic batch ``[check(lease_key, token), write]``, commits only while the key
is still exactly what this holder wrote (docs/coordination.md, "Leases").

Acquire, renew and release are written once (commands, as in :mod:`._memory`), for
:class:`Lease` (sync, ``with``) and :class:`AsyncLease` (``async with``).
"""

from __future__ import annotations

import contextlib
import os
import time

from . import _common as c
from . import _fork
from ._errors import BotWireError, Conflict, InvalidArgument, LeaseLost
from ._memory import AsyncRun, SyncRun, command
from ._types import Op

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

    from ._async import AsyncMemory
    from ._memory import Memory, Returns

__all__ = ["LEASE_PREFIX", "AsyncLease", "Lease", "LeaseBase"]

#: Where leases live in their namespace: ordinary keys (listed, counted, removed by clear()).
LEASE_PREFIX = c.RESERVED_PREFIX + "lease/"
HOLDER_MAX = 200  # characters of a holder's name: it travels in every lease value and error
# Waiting for a held lease: full-jitter backoff from 20 ms doubling to at most 1 s per sleep,
# so waiters neither hammer the store nor oversleep a release by more than a second.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.02, 1.0
_SPINS = 3  # a lease seen absent after losing if_absent: retried at once this many times


def _check_seconds(ns: str, name: str, what: str, value: Any, *, zero: bool) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and value - value == 0  # finite (nan - nan and inf - inf are nan)
        and (value >= 0 if zero else value > 0)
        and value < 1e9
    )
    if not ok:
        rule = "0 or more" if zero else "greater than 0"
        raise InvalidArgument(
            f"botwire: lease {name!r} in namespace {ns!r}: {what}={value!r}; {what} is a number "
            f"of seconds {rule} (below 1e9), e.g. {what}=30.",
            namespace=ns,
            key=LEASE_PREFIX + name if isinstance(name, str) else None,
        )
    return float(value)


def _check_name(ns: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(
            f"botwire: lease name {name!r} in namespace {ns!r}; a lease name is a non-empty "
            "string, e.g. memory.lease(f'session-{session_id}').",
            namespace=ns,
        )
    c.check_key(LEASE_PREFIX + name, ns)  # the key rules: at most 1024 UTF-8 bytes, no NUL
    return name


def _unique_holder() -> str:
    """A holder unique to a lease object in this process: host, process and 48 random bits."""
    return f"{os.uname().nodename}:{os.getpid()}:{os.urandom(6).hex()}"


def _check_holder(ns: str, name: str, holder: Any) -> str:
    if holder is None:
        return _unique_holder()
    if not isinstance(holder, str) or not 1 <= len(holder) <= HOLDER_MAX:
        raise InvalidArgument(
            f"botwire: lease {name!r} in namespace {ns!r}: holder={holder!r}; a holder is a "
            f"string of 1 to {HOLDER_MAX} characters naming this invocation, e.g. "
            "holder=context.aws_request_id (or omit it for a unique one).",
            namespace=ns,
            key=LEASE_PREFIX + name,
        )
    return holder


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "its release (it has no expiry)"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class LeaseBase:
    """What :class:`Lease` and :class:`AsyncLease` share: the state and the commands."""

    _memory: Any  # the Memory or AsyncMemory whose store holds the lease
    _sleep: Any  # the memory's sleep: time.sleep or asyncio.sleep (yielded)

    def __init__(self, memory: Any, name: str, ttl: float, holder: str | None, wait: float) -> None:
        ns = memory.namespace
        self._memory = memory
        self._sleep = memory._sleep
        self.namespace: str = ns
        self.name: str = _check_name(ns, name)
        self.key: str = LEASE_PREFIX + name
        self.ttl: float = _check_seconds(ns, name, "ttl", ttl, zero=False)
        self.wait: float = _check_seconds(ns, name, "wait", wait, zero=True)
        self.holder: str = _check_holder(ns, name, holder)
        self._own_name = holder is None  # the name is this object's: a forked copy gets anew
        #: The fencing token: the lease key's version written by this holder's acquisition or
        #: last renewal; ``None`` while not held.
        self.token: int | None = None
        #: When the lease expires, by the store's clock (seconds since the epoch).
        self.expires_at: float | None = None
        self._value: dict[str, Any] = {}
        self._deadline = 0.0  # time.monotonic() after which it surely expired (local estimate)
        # One element per renewal of this object in flight (list.append/pop: atomic across
        # threads): only then may a failed check be a renewal committed but not yet answered.
        self._renewing: list[int] = []
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a forked child: the lease is the parent's, not the child's (two workers forked
        from one that made the lease must not both hold it). A default holder name is made
        anew, so the child's ``acquire`` competes with the parent's and its siblings'."""
        if self._own_name:
            self.holder = _unique_holder()
        self._renewing = []
        self._forfeit()

    @property
    def held(self) -> bool:
        """Whether this holder still holds the lease as far as it can tell locally (a token,
        and less than ``ttl`` elapsed since the request that last wrote it was sent). It errs
        only towards ``False``; the store is the authority: a fenced write checks it."""
        return self.token is not None and time.monotonic() < self._deadline

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, namespace={self.namespace!r}, "
            f"holder={self.holder!r}, token={self.token!r}, held={self.held})"
        )

    # -- what the commands share -----------------------------------------------------------------

    def _write_ops(self, ttl: float, **condition: Any) -> list[Op]:
        """Write the lease value with ``ttl`` under ``condition`` and read it back (the store's
        expiry) in the same atomic batch."""
        ns = self.namespace
        return [
            c.op_set(ns, self.key, self._value, ttl=ttl, **condition),
            c.op_get(ns, self.key),
        ]

    def _took(self, result: dict[str, Any], sent: float, ttl: float) -> None:
        if self.token is not None and result["version"] < self.token:
            return  # a concurrent renewal's answer came first: keep the newer token
        self.token = result["version"]
        self.expires_at = result["expires_at"]
        self.ttl = ttl
        self._deadline = sent + ttl

    def _forfeit(self) -> None:
        """The lease is not ours any more (a failed fence, renewal or release)."""
        self.token = None
        self.expires_at = None
        self._deadline = 0.0

    def _moved_on(self, store: Any, sent: int) -> Returns[int | None]:
        """After a write, renewal or release conditioned on token ``sent`` failed its check: the
        lease's token now if it is still this object's (the value it wrote, at a newer version:
        a ``renew()`` on another thread or task committed meanwhile), so the caller sends it
        again at that token; else ``None`` and the lease is forfeit. The store decides, not
        this object's fields: the renewal's answer may not have reached them yet."""
        if self._renewing or self.token not in (None, sent):
            entry = yield store.get(self.namespace, self.key)
            if entry is not None and entry.version != sent and entry.value == self._value:
                return int(entry.version)
        self._forfeit()  # any other write of the key, even of the same value: not ours now
        return None

    def _lost(self, what: str, token: int | None, why: str | None = None) -> LeaseLost:
        if why is None and token is None:
            why = "was never acquired (or was released): acquire it first (with/acquire())"
        elif why is None:
            why = (
                f"expired or was acquired by another holder since token {token} (a holder "
                "paused past its ttl, e.g. a frozen Lambda); nothing was written. Raise ttl "
                "above the longest pause, renew() in long loops, and re-read before retrying"
            )
        return LeaseLost(
            f"botwire: {what} fenced on lease {self.name!r} (holder {self.holder!r}) in "
            f"namespace {self.namespace!r}: the lease {why}.",
            namespace=self.namespace,
            key=self.key,
            lease=self.name,
            holder=self.holder,
            token=token,
        )

    def _busy(self, entry: Any) -> Conflict:
        value = entry.value if isinstance(entry.value, dict) else {}
        holder = value.get("holder")
        expires_at = entry.expires_at
        left = ""
        if expires_at is not None:
            left = f" (about {max(0.0, expires_at - time.time()):.1f} s from now)"
        waited = f" after waiting {self.wait:g} s" if self.wait else ""
        return Conflict(
            f"botwire: lease {self.name!r} in namespace {self.namespace!r} is held by "
            f"{holder!r} until {_when(expires_at)}{left}{waited}; retry later, pass wait= to "
            "wait for it, or answer that the work is busy (a crashed holder's lease expires on "
            "its own).",
            namespace=self.namespace,
            key=self.key,
            current_version=entry.version,
            lease=self.name,
            holder=holder,
            expires_at=expires_at,
            record=value,
        )

    # -- the commands: one definition for Lease and AsyncLease -----------------------------------

    @command
    def acquire(self) -> Returns[int]:
        """Take the lease, or raise :class:`~botwire.Conflict` naming its holder and expiry
        (after retrying for up to ``wait`` seconds); returns the token. A no-op while
        :attr:`held`; once ``ttl`` has passed locally it acquires afresh (a new token).

        A holder given explicitly (``holder=context.aws_request_id``) that finds its own name
        on the lease takes it over with a new token: a platform retry of the same request
        resumes instead of waiting for its crashed attempt's lease to expire.
        """
        if self.held:
            return self.token  # type: ignore[return-value]
        self._forfeit()
        store, ns = self._memory._store, self.namespace
        # Who holds it, for the Conflict others get; the times are informational only.
        self._value = {
            "holder": self.holder,
            "acquired": time.time(),
            "host": os.uname().nodename,
            "pid": os.getpid(),
        }
        give_up = time.monotonic() + self.wait
        attempt = spins = 0
        while True:
            sent = time.monotonic()
            try:
                results = yield store.batch(ns, self._write_ops(self.ttl, if_absent=True))
                self._took(results[1], sent, self.ttl)
                return results[0]["version"]  # type: ignore[no-any-return]
            except Conflict:
                pass
            entry = yield store.get(ns, self.key)
            if entry is None and spins < _SPINS:  # released or expired in between: at once
                spins += 1
                continue
            value = entry.value if entry is not None else None
            # Our own name on it: an earlier attempt of ours (a platform retry): take it over.
            if isinstance(value, dict) and value.get("holder") == self.holder:
                sent = time.monotonic()
                ops = self._write_ops(self.ttl, if_version=entry.version)
                try:
                    results = yield store.batch(ns, ops)
                    self._took(results[1], sent, self.ttl)
                    return results[0]["version"]  # type: ignore[no-any-return]
                except Conflict:
                    continue
            left = give_up - time.monotonic()
            if left <= 0:
                if entry is None:  # kept vanishing between our write and read: say so
                    raise Conflict(
                        f"botwire: lease {self.name!r} in namespace {self.namespace!r} is "
                        "contended (taken and freed between attempts); retry, or pass wait=.",
                        namespace=ns,
                        key=self.key,
                        lease=self.name,
                    )
                raise self._busy(entry)
            import random  # only when waiting: keeps it off the import path

            pause = random.uniform(0.5, 1.0) * min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**attempt)
            attempt, spins = attempt + 1, 0
            yield self._sleep(min(pause, left))

    @command
    def renew(self, ttl: float | None = None) -> Returns[int]:
        """Push the expiry ``ttl`` seconds (default: the lease's ``ttl``) past now, by the
        store's clock; returns the new, larger token. Raises :class:`~botwire.LeaseLost` when
        the lease expired or another holder has it (then this object no longer holds it)."""
        ttl = (
            self.ttl
            if ttl is None
            else _check_seconds(self.namespace, self.name, "ttl", ttl, zero=False)
        )
        token = self.token
        if token is None:
            raise self._lost("renew()", None)
        store = self._memory._store
        while True:
            sent = time.monotonic()
            self._renewing.append(token)
            try:
                results = yield store.batch(self.namespace, self._write_ops(ttl, if_version=token))
            except Conflict as error:
                failed: Conflict | None = error
            else:
                failed = None
            finally:
                self._renewing.pop()
            if failed is None:
                self._took(results[1], sent, ttl)
                return results[0]["version"]  # type: ignore[no-any-return]
            moved = yield from self._moved_on(store, token)
            if moved is None:
                raise self._lost("renew()", token) from failed
            token = moved  # renewed by another call meanwhile: renew from there

    @command
    def release(self) -> Returns[bool]:
        """Free the lease if it is still this holder's (a conditional delete); returns whether
        it was. Idempotent: releasing an expired, taken-over or released lease returns False."""
        token = self.token
        store = self._memory._store
        while token is not None:
            op = c.op_delete(self.namespace, self.key, if_version=token)
            try:
                results = yield store.batch(self.namespace, [op])
            except Conflict:
                token = yield from self._moved_on(store, token)  # renewed meanwhile: again
                continue
            self._forfeit()
            return bool(results[0]["deleted"])
        return False


class Lease(LeaseBase, SyncRun):
    """A lease on ``memory`` (:meth:`Memory.lease <botwire.Memory.lease>`): ``with`` acquires
    and releases it.

    Example::

        with memory.lease(f"session-{session_id}", ttl=60) as lease:
            history = memory.get("history") or []
            memory.set("history", [*history, turn], fence=lease)  # LeaseLost once it is not ours
    """

    def __init__(
        self,
        memory: Memory,
        name: str,
        ttl: float = 30.0,
        *,
        holder: str | None = None,
        wait: float = 0.0,
    ) -> None:
        super().__init__(memory, name, ttl, holder, wait)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.release()
            return
        with contextlib.suppress(BotWireError):  # the exception raising matters more
            self.release()


class AsyncLease(LeaseBase, AsyncRun):
    """A lease on an :class:`~botwire.AsyncMemory`: ``async with`` acquires and releases it;
    ``acquire``/``renew``/``release`` are coroutines.

    Example::

        async with memory.lease(f"session-{session_id}", ttl=60) as lease:
            await memory.append("history", turn, fence=lease)
    """

    def __init__(
        self,
        memory: AsyncMemory,
        name: str,
        ttl: float = 30.0,
        *,
        holder: str | None = None,
        wait: float = 0.0,
    ) -> None:
        super().__init__(memory, name, ttl, holder, wait)

    async def __aenter__(self) -> AsyncLease:
        await self.acquire()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.release()
            return
        with contextlib.suppress(BotWireError):  # the exception raising matters more
            await self.release()
