"""``GET /v1/namespaces/{ns}/changes``: what changed since a version, long-polled (issue 18).

``?prefix=&after=&limit=&wait=``: without ``wait`` (or with ``after`` absent) the answer comes at
once; with ``wait`` > 0 the request is held until a change under the prefix, ``wait`` seconds or
the server's ``--watch-hold`` (default 20 s), whichever comes first. The waiter is registered
with the watch hub (``botwire_server.watch``) before each read, so a write landing between the
read and the wait still wakes it, and it is freed however the request ends: an answer, an
error, or the client going away (its ``http.disconnect`` ends the wait at once)."""

from __future__ import annotations

import asyncio
import contextlib
import math

from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument
from botwire._watch import MAX_CHANGES, check_changes_args
from botwire._wire import MAX_WAIT, changes_to_wire
from botwire.store._wakeups import resume

from ._context import context
from ._http import json_response, query_int, route_names

__all__ = ["get_changes"]

PREFIX = b"/v1/namespaces/"


def _wait(request: Request, ns: str) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_WAIT:  # the client asks at most MAX_WAIT per poll (one constant)
        raise InvalidArgument(
            f"botwire: query parameter wait={raw[:40]!r} must be seconds in 0..{MAX_WAIT:.0f} "
            "(the server holds a request at most its --watch-hold; the client polls again).",
            namespace=ns,
        )
    return value


async def _disconnected(request: Request) -> None:
    """Return when the client has gone (``http.disconnect``); a GET has no body to read."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def get_changes(request: Request) -> Response:
    """Changes under ``prefix`` after version ``after`` (see the module docstring)."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, _ = route_names(request, prefix=PREFIX, segment=None)
    principal.require(ns, write=False)
    prefix = request.query_params.get("prefix", "")
    after = query_int(request, "after", None, ns, low=0, high=2**63 - 1)
    limit = query_int(request, "limit", MAX_CHANGES, ns, low=1, high=MAX_CHANGES)
    assert limit is not None
    wait = min(_wait(request, ns), ctx.settings.watch_hold)
    check_changes_args(ns, prefix, after, limit)
    store = ctx.store
    if wait <= 0 or after is None:
        found = await store.changes(ns, prefix=prefix, after=after, limit=limit)
        return json_response(changes_to_wire(found))
    hub = ctx.extra["watch"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with hub.waiting(ns, prefix) as event:  # 429 beyond the limits, before anything is held
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            while True:
                event.clear()  # before the read: a write after it sets the event again
                found = await store.changes(ns, prefix=prefix, after=after, limit=limit)
                left = deadline - loop.time()
                if found.entries or left <= 0 or gone.done():
                    break
                after = resume(after, found)  # a wake reads only what came after this read
                woken = asyncio.ensure_future(event.wait())
                try:
                    await asyncio.wait({woken, gone}, timeout=left, return_when="FIRST_COMPLETED")
                finally:
                    woken.cancel()
                if gone.done():
                    break
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone
    return json_response(changes_to_wire(found))
