"""Bearer-token auth for the HTTP transport: the JWTs ``botwire-server token create`` mints.

Same secret, algorithm and claims as botwire-server (``ns``: namespace glob patterns, ``perm``:
``read``/``write``/``admin``, ``exp``), so one token works against both. The ASGI middleware
refuses a request without a valid token (401, a JSON-RPC error naming the problem); each tool then
checks the token covers the namespace it touches, and that writes have ``write``.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from botwire import Forbidden, Unauthorized

__all__ = [
    "Authorizer",
    "BearerAuth",
    "Principal",
    "current_principal",
    "is_loopback",
    "require",
]

PERMS = ("read", "write", "admin")
_RANK = {p: i for i, p in enumerate(PERMS)}
ALGORITHM = "HS256"

# The principal of the HTTP request being served; None on stdio and anonymous HTTP.
_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "botwire_mcp_principal", default=None
)


@dataclass(frozen=True)
class Principal:
    """What a verified token grants: namespace glob patterns and a permission."""

    patterns: tuple[str, ...]
    perm: str

    def require(self, namespace: str, *, write: bool) -> None:
        """Raise :class:`Forbidden` unless this token may read (or write) ``namespace``."""
        if not any(fnmatchcase(namespace, p) for p in self.patterns):
            raise Forbidden(
                f"botwire-mcp: this token does not cover namespace {namespace!r} (it covers "
                f"{', '.join(map(repr, self.patterns)) or 'no namespace'}); nothing was read or "
                "written. Mint a token whose --ns patterns include it.",
                namespace=namespace,
            )
        if write and _RANK[self.perm] < _RANK["write"]:
            raise Forbidden(
                f"botwire-mcp: this token is read-only, so it cannot write namespace "
                f"{namespace!r}; nothing was written. Use a token minted without --read-only.",
                namespace=namespace,
            )


def current_principal() -> Principal | None:
    return _PRINCIPAL.get()


def require(namespace: str, *, write: bool, principal: Principal | None = None) -> None:
    """Check the current request's token (if any) against ``namespace``."""
    principal = principal or _PRINCIPAL.get()
    if principal is not None:
        principal.require(namespace, write=write)


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(
        f"botwire-mcp: {message}. Send 'Authorization: Bearer <token>' with a token from "
        "'botwire-server token create --ns <namespace>' signed with this server's "
        "--token-secret."
    )


class Authorizer:
    """Verifies ``Authorization`` header values against one HS256 secret."""

    def __init__(self, secret: str) -> None:
        import jwt  # only the HTTP transport with auth needs PyJWT

        self._jwt = jwt
        self.secret = secret
        warnings.filterwarnings("ignore", message=".*HMAC key.*", module="jwt")

    def authenticate(self, header: str | None) -> Principal:
        jwt = self._jwt
        if not header:
            raise _unauthorized("this server needs a token and the request carried none")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header is not 'Bearer <token>'")
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["ns", "perm"]}
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidTokenError:
            raise _unauthorized(
                "the token is invalid (bad signature, algorithm or claims)"
            ) from None
        ns, perm = claims.get("ns"), claims.get("perm")
        if isinstance(ns, str):
            ns = [ns]
        if not isinstance(ns, list) or not all(isinstance(p, str) and p for p in ns):
            raise _unauthorized("the token's 'ns' claim is not a list of namespace patterns")
        if perm not in _RANK:
            raise _unauthorized("the token's 'perm' claim is not read, write or admin")
        return Principal(tuple(ns), perm)


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
            body = json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": str(exc)}}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b'Bearer error="invalid_token"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
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
