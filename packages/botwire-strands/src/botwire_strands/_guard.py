"""``InvocationGuard``: at most one running invocation per Strands session.

Lambda (and any queue consumer) can run the same session twice at once: a client retry, an SQS
redelivery, a double click. Both invocations restore the same history and interleave their
messages. The guard is botwire's lease (``memory.lease``, docs/coordination.md): exactly one
invocation holds it, a second one fails fast with :class:`SessionBusy`, a crashed holder's
lease expires on its own, release frees it only if it is still ours, and the repository's and
storage's writes are fenced on its token (``fence=``), so a late holder never writes over the
invocation that took the session over.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent, HookProvider, HookRegistry
from strands.hooks.registry import HookOrder
from strands.types.exceptions import SessionException

import botwire
from botwire import Conflict, Memory
from botwire._lease import LEASE_PREFIX

from ._common import key_part, open_memory

__all__ = ["GUARD_PREFIX", "InvocationGuard", "LeaseLost", "SessionBusy"]

#: Name prefix of the guard's leases (``memory.lease(GUARD_NAME + session)``).
GUARD_NAME = "strands-guard/"
#: Key prefix of the lease records inside the guard's botwire namespace.
GUARD_PREFIX = LEASE_PREFIX + GUARD_NAME


class SessionBusy(SessionException):
    """Another invocation holds this session's lease; nothing was read or written."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str,
        holder: dict[str, Any] | None,
        expires_at: float | None,
    ) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(SessionException):
    """This invocation's lease expired and another invocation took the session over (a Strands
    ``SessionException``; the botwire :class:`botwire.LeaseLost` behind it is its cause)."""


class InvocationGuard(HookProvider):
    """A lease on one Strands session, opt-in: use it around the handler, or as a hook.

    ``with InvocationGuard(session_id, namespace="my-app", ttl=960): ...`` acquires on entry
    (raising :class:`SessionBusy` at once when another invocation holds it) and releases on exit.
    ``Agent(hooks=[guard])`` does the same around each ``agent(...)`` call. Build it with
    ``repository.guard(session_id)`` / ``storage.guard(session_id)`` (or pass ``guard=``) and
    every write of that repository or storage is also fenced: it commits only while this lease
    is still held (one round trip, as before).

    ``ttl`` (seconds) must exceed the longest invocation (a Lambda function's timeout): a lease
    that expires mid-invocation lets a second invocation in; call :meth:`renew` in long loops.
    ``owner`` names the holder in errors; with Lambda pass ``context.aws_request_id``: a platform
    retry of the same request then takes over its own crashed lease instead of waiting.
    """

    def __init__(
        self,
        session_id: str,
        *,
        namespace: str = "strands",
        url: str | None = None,
        token: str | None = None,
        memory: Memory | None = None,
        ttl: float = 900.0,
        owner: str | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl={ttl!r}: the lease needs a positive TTL in seconds")
        self.session_id = session_id
        self.memory = open_memory(namespace, url=url, token=token, memory=memory)
        self.owner = owner or uuid.uuid4().hex
        #: The botwire lease; its token fences the repository's and storage's writes.
        self.lease = self.memory.lease(
            GUARD_NAME + key_part(session_id), ttl=float(ttl), holder=self.owner
        )
        self.key = self.lease.key
        self.ttl = float(ttl)

    @property
    def version(self) -> int | None:
        """The lease's fencing token (its botwire version) while held, else ``None``."""
        return self.lease.token

    @property
    def held(self) -> bool:
        """Whether this guard believes it holds the lease (a fenced write checks it)."""
        return self.lease.token is not None

    def acquire(self) -> int:
        """Take the lease or raise :class:`SessionBusy`; one round trip when free."""
        try:
            return self.lease.acquire()
        except Conflict as busy:
            record = busy.details.get("record")
            expires_at = busy.details.get("expires_at")
            if not isinstance(record, dict):
                raise self._busy(None, expires_at) from busy
            holder = {
                "owner": record.get("holder"),
                "host": record.get("host"),
                "pid": record.get("pid"),
                "acquired_at": record.get("acquired"),
                "expires_at": expires_at,
            }
            raise self._busy(holder, expires_at) from busy

    def _busy(self, holder: dict[str, Any] | None, expires_at: float | None) -> SessionBusy:
        import time

        wait = f"{max(0.0, expires_at - time.time()):.0f} s" if expires_at else "its release"
        who = (
            f"owner {holder.get('owner')!r} on {holder.get('host')!r} (pid {holder.get('pid')})"
            if holder
            else "another invocation"
        )
        return SessionBusy(
            f"Strands session {self.session_id!r} is already being invoked by {who}; "
            f"lease key {self.key!r} in botwire namespace {self.memory.namespace!r}. "
            f"Retry after {wait} (the lease expires on its own if that invocation crashed), "
            "or answer the caller that the session is busy.",
            session_id=self.session_id,
            holder=holder,
            expires_at=expires_at,
        )

    def renew(self) -> int:
        """Push the expiry ``ttl`` seconds ahead; :class:`LeaseLost` if it was taken over."""
        if self.lease.token is None:
            raise LeaseLost(f"session {self.session_id!r}: renew() before acquire()")
        try:
            return self.lease.renew()
        except botwire.LeaseLost as error:
            raise self._lost("renew") from error

    def release(self) -> None:
        """Free the lease if it is still ours; :class:`LeaseLost` if another holder has it."""
        if self.lease.token is None:
            return
        if not self.lease.release():
            raise self._lost("release")

    def _lost(self, what: str) -> LeaseLost:
        return LeaseLost(
            f"Strands session {self.session_id!r}: the lease ({self.key!r} in botwire namespace "
            f"{self.memory.namespace!r}) expired during this invocation and another invocation "
            f"took it ({what}); raise ttl above the invocation timeout (now {self.ttl:g} s) "
            "or call renew() during long runs"
        )

    def __enter__(self) -> InvocationGuard:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.release()
            return
        with contextlib.suppress(LeaseLost):  # the original exception matters more
            self.release()

    # -- Strands hooks: acquire before each agent invocation, release after it ---------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Strands ``HookProvider``: ``Agent(hooks=[guard])``."""
        # First in, last out: Strands runs AfterInvocation callbacks in reverse registration order
        # and registers the session manager before ``hooks=``, so at the default priority the
        # release would precede the manager's final save and leave that write unguarded.
        registry.add_callback(BeforeInvocationEvent, self._before, order=HookOrder.SDK_FIRST)
        registry.add_callback(AfterInvocationEvent, self._after, order=HookOrder.SDK_LAST)

    def _before(self, event: BeforeInvocationEvent) -> None:
        self.acquire()

    def _after(self, event: AfterInvocationEvent) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"InvocationGuard({self.session_id!r}, key={self.key!r}, held={self.held})"
