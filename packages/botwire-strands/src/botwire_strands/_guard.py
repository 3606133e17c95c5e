"""``InvocationGuard``: at most one running invocation per Strands session.

Lambda (and any queue consumer) can run the same session twice at once: a client retry, an SQS
redelivery, a double click. Both invocations restore the same history and interleave their
messages. The guard is a lease: a botwire key written with ``if_absent`` and a TTL, so exactly one
invocation holds it, a second one fails fast with :class:`SessionBusy`, and a crashed holder's
lease expires on its own. Release deletes the key only if its version is still ours
(``if_version``), so a late holder never frees a lease someone else took over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from typing import Any

from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent, HookProvider, HookRegistry
from strands.hooks.registry import HookOrder
from strands.types.exceptions import SessionException

from botwire import Conflict, Memory

from ._common import key_part, open_memory

__all__ = ["GUARD_PREFIX", "InvocationGuard", "LeaseLost", "SessionBusy"]

#: Key prefix of the lease records inside the guard's botwire namespace.
GUARD_PREFIX = "botwire-guard/"


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
    """This invocation's lease expired and another invocation took the session over."""


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
        self.key = GUARD_PREFIX + key_part(session_id)
        self.ttl = float(ttl)
        self.owner = owner or uuid.uuid4().hex
        self.version: int | None = None  # the lease's botwire version while held

    @property
    def held(self) -> bool:
        """Whether this guard believes it holds the lease (see :meth:`check` to be sure)."""
        return self.version is not None

    def _record(self) -> dict[str, Any]:
        now = time.time()
        return {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": now,
            "expires_at": now + self.ttl,
        }

    def acquire(self) -> int:
        """Take the lease or raise :class:`SessionBusy`; one round trip when free."""
        if self.version is not None:
            return self.version
        try:
            self.version = self.memory.set(self.key, self._record(), ttl=self.ttl, if_absent=True)
            return self.version
        except Conflict:
            pass
        entry = self.memory.entry(self.key)
        if entry is None:  # released (or expired) in between: one more try, no loop
            self.version = self.memory.set(self.key, self._record(), ttl=self.ttl, if_absent=True)
            return self.version
        holder = entry.value if isinstance(entry.value, dict) else None
        if holder is not None and holder.get("owner") == self.owner:
            # Our own earlier attempt (a platform retry of the same request): take it over.
            try:
                self.version = self.memory.set(
                    self.key, self._record(), ttl=self.ttl, if_version=entry.version
                )
                return self.version
            except Conflict:
                pass
        expires_at = entry.expires_at
        wait = f"{max(0.0, expires_at - time.time()):.0f} s" if expires_at else "its release"
        who = (
            f"owner {holder.get('owner')!r} on {holder.get('host')!r} (pid {holder.get('pid')})"
            if holder
            else "another invocation"
        )
        raise SessionBusy(
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
        if self.version is None:
            raise LeaseLost(f"session {self.session_id!r}: renew() before acquire()")
        try:
            self.version = self.memory.set(
                self.key, self._record(), ttl=self.ttl, if_version=self.version
            )
        except Conflict as error:
            self.version = None
            raise self._lost("renew") from error
        return self.version

    def release(self) -> None:
        """Free the lease if it is still ours; :class:`LeaseLost` if another holder has it."""
        version, self.version = self.version, None
        if version is None:
            return
        try:
            self.memory.delete(self.key, if_version=version)
        except Conflict as error:
            raise self._lost("release") from error

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
