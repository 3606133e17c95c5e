"""Bearer-token auth for the HTTP transport: the JWTs ``botwire-server token create`` mints.

The token checks are botwire-server's own (one definition in ``botwire._tokens``: same secret,
algorithm and strict claims; ``ns``: namespace glob patterns, ``perm``: ``read``/``write``/
``admin``, ``exp``), so one token means the same against both. The ASGI middleware
refuses a request without a valid token (401, a JSON-RPC error naming the problem); each tool then
checks the token covers the namespace it touches, and that writes have ``write``.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
from typing import Any

from botwire import Unauthorized
from botwire._tokens import Authorizer as _Authorizer
from botwire._tokens import Principal

__all__ = [
    "Authorizer",
    "BearerAuth",
    "Principal",
    "current_principal",
    "is_loopback",
    "jsonrpc_refusal",
    "require",
]


async def jsonrpc_refusal(
    send: Any, status: int, code: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """Answer an HTTP request refused before it reaches the MCP app: ``status`` with a
    JSON-RPC error body (``code``, ``message``) and ``headers`` beside its content headers."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    ).encode()
    content = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": content + headers})
    await send({"type": "http.response.body", "body": body})


# The principal of the HTTP request being served; None on stdio and anonymous HTTP.
_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "botwire_mcp_principal", default=None
)


def current_principal() -> Principal | None:
    return _PRINCIPAL.get()


def require(namespace: str, *, write: bool, principal: Principal | None = None) -> None:
    """Check the current request's token (if any) against ``namespace``."""
    principal = principal or _PRINCIPAL.get()
    if principal is not None:
        principal.require(namespace, write=write)


class Authorizer(_Authorizer):
    """botwire-server's token checks (one definition), with this server's wording in each 401."""

    def __init__(self, secret: str) -> None:
        super().__init__(
            secret,
            who="botwire-mcp",
            hint="'botwire-server token create --ns <namespace>' signed with this server's "
            "--token-secret",
        )


class BearerAuth:
    """ASGI middleware: a valid botwire token or a 401 whose JSON-RPC error names the problem."""

    def __init__(self, app: Any, authorizer: Authorizer) -> None:
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
        try:
            principal = self.authorizer.authenticate(header)
        except Unauthorized as exc:
            challenge = [(b"www-authenticate", b'Bearer error="invalid_token"')]
            await jsonrpc_refusal(send, 401, -32001, str(exc), challenge)
            return
        scope.setdefault("state", {})["botwire_principal"] = principal
        token = _PRINCIPAL.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _PRINCIPAL.reset(token)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
