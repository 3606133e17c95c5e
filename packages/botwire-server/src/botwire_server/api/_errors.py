"""Every error leaves as ``BotWireError.to_payload()`` with its status (DESIGN §4)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from botwire import BotWireError, InvalidArgument, QuotaExceeded, Unauthorized, ValueTooLarge

from ..quotas import retry_after_header
from ._http import MethodNotAllowed, NotFound, json_response

__all__ = ["install_error_handlers"]

log = logging.getLogger("botwire_server")


def error_response(request: Request, exc: BotWireError) -> Response:
    payload: dict[str, Any] = exc.to_payload()
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="botwire"'
    if isinstance(exc, (QuotaExceeded, ValueTooLarge)):
        ctx = getattr(request.app.state, "botwire", None)
        if ctx is not None:
            quota = exc.details.get("quota", "max_value_bytes")
            ctx.metrics.quota_refusals.labels(str(quota)).inc()
    if isinstance(exc, QuotaExceeded):
        retry = retry_after_header(exc)
        if retry is not None:
            headers["Retry-After"] = retry
    if request.scope.get("path", "").startswith("/memory/"):
        payload["detail"] = exc.message  # the original service's error field
    return json_response(payload, exc.status, headers or None)


async def _botwire_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BotWireError)
    return error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    )
    return error_response(request, InvalidArgument(f"botwire: malformed request ({where[:500]})."))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: BotWireError
    if exc.status_code == 404:
        err = NotFound(f"botwire: no route {request.scope.get('path', '')!r}; see /docs.")
    elif exc.status_code == 405:
        err = MethodNotAllowed(
            f"botwire: method {request.method} is not allowed on this route; see /docs."
        )
    else:
        err = BotWireError(str(exc.detail))
        err.status = exc.status_code
        err.code = "http_error"
    return error_response(request, err)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.scope.get("route"), exc_info=exc)
    err = BotWireError("botwire: internal server error; the server log has the details.")
    err.code = "internal"
    return error_response(request, err)


def install_error_handlers(app: Any) -> None:
    app.add_exception_handler(BotWireError, _botwire_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
