"""Admission control: how many request-body bytes may be parsed and applied at once.

A body is read (its size is bounded per route), then *admitted* before it is parsed: while
the bodies admitted total more than ``max_inflight_bytes``, later requests wait, so a burst of
large requests cannot pile up parsed bodies (a parsed body costs many times its bytes) in the
thread pool's queue. A request waiting longer than ``wait_seconds`` is answered 503
``unavailable`` with ``Retry-After`` (clients retry it). One body is always admitted when
nothing else is in flight, whatever its size.

The :class:`AdmissionMiddleware` releases what a request was admitted for once its response
is sent, however the route ends.

Example::

    gate = Admission(64 * 1024 * 1024)
    app = AdmissionMiddleware(app, gate)
    # in a route, after reading the body:
    await gate.admit(request.scope, len(body))
"""

from __future__ import annotations

import asyncio
from typing import Any

from botwire import Unavailable

__all__ = ["Admission", "AdmissionMiddleware", "ServerBusy"]

_HELD = "botwire.admitted"


class ServerBusy(Unavailable):
    """Too many large requests at once (HTTP 503 with ``Retry-After``)."""


class Admission:
    """A byte-weighted gate shared by the requests of one server process."""

    def __init__(self, max_bytes: int, wait_seconds: float = 10.0) -> None:
        self.max_bytes = max_bytes
        self.wait_seconds = wait_seconds
        self.inflight = 0
        self.peak = 0
        #: bodies that had to wait, and those refused after waiting (``/metrics``)
        self.waited = 0
        self.refused = 0
        #: bodies waiting now: a release wakes them, and takes the condition only if one does
        self.waiting = 0
        self._changed = asyncio.Condition()

    async def admit(self, scope: dict[str, Any], size: int) -> None:
        """Wait until ``size`` more bytes fit (or nothing else is in flight)."""
        if self.inflight + size <= self.max_bytes or self.inflight == 0:
            self._take(scope, size)
            return
        self.waited += 1
        self.waiting += 1
        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self.inflight + size <= self.max_bytes or self.inflight == 0
                    ),
                    self.wait_seconds,
                )
                self._take(scope, size)
        except TimeoutError:
            self.refused += 1
            raise ServerBusy(
                f"botwire: the server is busy with {self.inflight} bytes of requests (its "
                f"limit is {self.max_bytes}); retry in a moment.",
                retry_after=1,
            ) from None
        finally:
            self.waiting -= 1

    def _take(self, scope: dict[str, Any], size: int) -> None:
        self.inflight += size
        self.peak = max(self.peak, self.inflight)
        scope[_HELD] = scope.get(_HELD, 0) + size

    async def release(self, scope: dict[str, Any]) -> None:
        size = scope.pop(_HELD, 0)
        if size:
            self.inflight -= size
            # Nobody waits (the usual case): no condition to take. A body that starts waiting
            # after this line checks the predicate under the condition, so it sees this
            # release's inflight; one that waits already is counted in ``waiting``.
            if self.waiting:
                async with self._changed:
                    self._changed.notify_all()


class AdmissionMiddleware:
    """Releases each request's admitted bytes once the app has answered it."""

    def __init__(self, app: Any, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if _HELD in scope:
                await self.admission.release(scope)
