"""Operational routes: health, readiness, metrics, the hidden no-op and the testing clock."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument

from ._context import context
from ._http import json_response, read_json

__all__ = ["healthz", "metrics", "noop", "readyz", "testing_clock"]


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: one read reaches the store (503 ``unavailable`` when it cannot)."""
    await context(request).store.ping()
    return json_response({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    body, content_type = context(request).metrics.render()
    return Response(body, media_type=content_type)


async def noop(request: Request) -> Response:
    """Does nothing; the benchmark's baseline for the framework's own cost (not in OpenAPI)."""
    return json_response({"ok": True})


async def testing_clock(request: Request) -> Response:
    """``{"advance": seconds}`` moves the store's clock forward (only with ``--testing-clock``)."""
    ctx = context(request)
    clock = ctx.testing_clock
    assert clock is not None
    body = await read_json(request, 4096, None)
    advance = body.get("advance", 0)
    if (
        isinstance(advance, bool)
        or not isinstance(advance, (int, float))
        or not (math.isfinite(advance) and advance >= 0)
    ):
        raise InvalidArgument('botwire: POST /_testing/clock takes {"advance": seconds >= 0}.')
    now = clock.advance(float(advance))
    return json_response({"now": now, "offset": clock.offset})
