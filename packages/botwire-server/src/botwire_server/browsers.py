"""What a web browser may do to the server: Host check, Origin/CORS, and JSON-only writes.

A web page the developer visits can make the browser send requests to ``127.0.0.1:8765``:
"simple" cross-site POSTs (``text/plain``, no preflight) and, through a DNS-rebinding host name,
even same-origin reads. Three checks, in one ASGI middleware, stop that before any route runs:

- **Host** (DNS rebinding): an anonymous server bound to a loopback address answers only
  ``Host`` names of this machine (``localhost``, ``127.0.0.1``, ``[::1]``, the bound address) and
  those added with ``--allowed-host``; others get 403 ``host_not_allowed``. ``--allowed-host '*'``
  turns the check off. Servers with tokens, or bound to other addresses, check only the names
  given with ``--allowed-host`` (if any): a rebinding page has no token to send.
- **Origin** (cross-site requests): a request carrying ``Origin`` is refused with 403
  ``origin_not_allowed`` unless the origin is listed with ``--cors-origin`` (or is the server's
  own origin, e.g. its ``/docs`` page). Listed origins get proper CORS answers, preflights
  included, so a web console or a browser agent can be allowed on purpose.
- **Content-Type**: ``PUT``, ``PATCH`` and ``POST`` need ``Content-Type: application/json``;
  anything else is a 415 ``unsupported_media_type`` (a browser cannot send that type
  cross-site without a preflight, which the Origin check refuses).

Example::

    app = BrowserGuard(app, allowed_hosts=("localhost", "127.0.0.1"), check_host=True,
                       cors_origins=("https://console.example.com",))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botwire import BotWireError, Forbidden
from botwire._codec import dumps

__all__ = [
    "LOOPBACK_NAMES",
    "BrowserGuard",
    "HostNotAllowed",
    "OriginNotAllowed",
    "UnsupportedMediaType",
    "default_allowed_hosts",
]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]", "localhost.")
_WRITES = frozenset({"PUT", "PATCH", "POST"})
_ALLOW_METHODS = "GET, PUT, PATCH, POST, DELETE"
_ALLOW_HEADERS = (
    "authorization, content-type, if-match, if-none-match, idempotency-key, x-botwire-key"
)
_EXPOSE_HEADERS = "etag, retry-after"
_MAX_AGE = "600"


class HostNotAllowed(Forbidden):
    """A ``Host`` name this server does not answer to (DNS rebinding), HTTP 403."""

    code = "host_not_allowed"


class OriginNotAllowed(Forbidden):
    """A web origin not listed with ``--cors-origin``, HTTP 403."""

    code = "origin_not_allowed"


class UnsupportedMediaType(BotWireError):
    """A write whose body is not declared ``application/json`` (HTTP 415)."""

    code = "unsupported_media_type"
    status = 415


def default_allowed_hosts(host: str, *, anonymous: bool, loopback: bool) -> tuple[str, ...]:
    """The ``Host`` names accepted when none are configured: empty means "any"."""
    if anonymous and loopback:
        return (*LOOPBACK_NAMES, host.lower())
    return ()


def _host_name(value: str) -> str:
    """``Host`` header without its port: ``[::1]:8765`` → ``[::1]``, ``a.b:80`` → ``a.b``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


class BrowserGuard:
    """Pure ASGI middleware applying the three checks of the module docstring."""

    def __init__(
        self, app: Any, *, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}
        self.any_host = not hosts or "*" in hosts
        self.hosts = frozenset(_host_name(h) if h != "*" else h for h in hosts)
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins if o.strip())
        self.any_origin = "*" in self.origins

    async def _refuse(
        self,
        scope: dict[str, Any],
        send: Any,
        exc: BotWireError,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = dumps(exc.to_payload()).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": exc.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        o = origin.strip().rstrip("/").lower()
        if self.any_origin or o in self.origins:
            return True
        # the server's own pages (/docs): same scheme-less host and port as the request
        return host is not None and o.split("://", 1)[-1] == host.strip().lower()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        # no Host at all is HTTP/1.0 from a program: browsers always send one
        if not self.any_host and host is not None and _host_name(host) not in self.hosts:
            shown = (host or "(none)")[:100]
            await self._refuse(
                scope,
                send,
                HostNotAllowed(
                    f"botwire: this server does not answer to host name {shown!r} (it answers "
                    f"{', '.join(sorted(self.hosts))}); a web page may be trying DNS rebinding. "
                    "If this name is yours, start the server with --allowed-host NAME."
                ),
            )
            return
        origin = _header(scope, b"origin")
        cors: list[tuple[bytes, bytes]] = []
        if origin is not None:
            if not self._origin_allowed(origin, host):
                await self._refuse(
                    scope,
                    send,
                    OriginNotAllowed(
                        f"botwire: requests from web origin {origin[:100]!r} are refused, so that "
                        "web pages cannot read or write agents' memory. To allow a web console or "
                        "browser agent on purpose, start the server with --cors-origin ORIGIN."
                    ),
                )
                return
            cors = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"Origin"),
                (b"access-control-expose-headers", _EXPOSE_HEADERS.encode()),
            ]
            if (
                scope["method"] == "OPTIONS"
                and _header(scope, b"access-control-request-method") is not None
            ):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [
                            *cors,
                            (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
                            (b"access-control-allow-headers", _ALLOW_HEADERS.encode()),
                            (b"access-control-max-age", _MAX_AGE.encode()),
                            (b"content-length", b"0"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        if scope["method"] in _WRITES:
            ctype = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                await self._refuse(
                    scope,
                    send,
                    UnsupportedMediaType(
                        f"botwire: {scope['method']} bodies must be sent with 'Content-Type: "
                        f"application/json' (got {ctype[:60] or 'none'!r}); send JSON with that "
                        "header."
                    ),
                    cors,
                )
                return
        if not cors:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
