"""Bearer-token verification shared by botwire-server and botwire-mcp (DESIGN §7).

HS256 JWTs scoped to namespace globs. Claims: ``ns`` (a list of glob patterns such as
``"tenant-42-*"``), ``perm`` (``read``, ``write`` or ``admin``) and ``exp``. One definition, so a
token means the same to the server and to the MCP server: both depend on PyJWT, imported when an
:class:`Authorizer` is made; ``import botwire`` never imports this module.

Claims are validated strictly, so a signed but malformed token is a 401, never a 500 and never
a looser reading: ``ns`` a string or a non-empty list of non-empty strings, ``perm`` one of the
three strings, ``exp``/``nbf``/``iat`` whole numbers (not strings, not booleans), and no claim
outside ``ns``, ``perm`` and the registered JWT claims (``exp nbf iat iss sub jti``; ``aud`` is
refused since there is no audience). ``admin`` grants exactly what ``write`` grants, on the
namespaces its ``ns`` patterns cover.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ._errors import Forbidden, Unauthorized

__all__ = ["ALGORITHM", "ANONYMOUS", "PERMS", "Authorizer", "Principal"]

PERMS = ("read", "write", "admin")
RANK = {p: i for i, p in enumerate(PERMS)}
ALGORITHM = "HS256"
#: The claims a token may carry: ours, and the registered JWT claims we understand.
ALLOWED_CLAIMS = frozenset({"ns", "perm", "exp", "nbf", "iat", "iss", "sub", "jti"})
#: Leeway for clock differences between the minting host and the verifier (seconds).
LEEWAY = 0
#: How a caller gets a token: the default fix named in every 401.
MINT_HINT = "'botwire-server token create' (tokens in the URL are ignored)"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the namespace globs and the permission a token grants.

    The anonymous principal (no token secret configured) may do everything.
    """

    patterns: tuple[str, ...]
    perm: str
    anonymous: bool = False

    def covers(self, namespace: str) -> bool:
        return self.anonymous or any(fnmatchcase(namespace, p) for p in self.patterns)

    def allows(self, namespace: str, *, write: bool) -> bool:
        if not self.covers(namespace):
            return False
        return not write or RANK[self.perm] >= RANK["write"]

    def require(self, namespace: str, *, write: bool) -> None:
        """Raise :class:`Forbidden` unless this principal may read (or write) ``namespace``."""
        if not self.covers(namespace):
            raise Forbidden(
                f"botwire: this token does not cover namespace {namespace!r} (it covers "
                f"{', '.join(map(repr, self.patterns)) or 'no namespace'}); nothing was read or "
                "written. Mint a token whose 'ns' (--ns) patterns include it.",
                namespace=namespace,
            )
        if write and RANK[self.perm] < RANK["write"]:
            raise Forbidden(
                f"botwire: this token is read-only, so it cannot write namespace {namespace!r}; "
                "nothing was written. Use a token minted without --read-only.",
                namespace=namespace,
            )

    def require_admin(self, namespace: str, what: str) -> None:
        """Raise :class:`Forbidden` unless this principal is an admin of ``namespace``
        (``what``: the action refused, for the message)."""
        self.require(namespace, write=False)
        if RANK[self.perm] < RANK["admin"]:
            raise Forbidden(
                f"botwire: only an admin token may {what} on namespace {namespace!r}; this "
                f"token's permission is {self.perm!r}, so nothing was changed. Mint one with "
                "'botwire-server token create --admin --ns PATTERN'.",
                namespace=namespace,
            )


ANONYMOUS = Principal((), "admin", anonymous=True)


class Authorizer:
    """Checks ``Authorization`` headers against one HS256 secret (``None``: anonymous).

    ``who`` prefixes every 401 message (``botwire``, ``botwire-mcp``); ``hint`` says where a
    valid token comes from.
    """

    def __init__(self, secret: str | None, *, who: str = "botwire", hint: str = MINT_HINT) -> None:
        import jwt  # PyJWT: a dependency of both packages that verify tokens, not of the client

        self._jwt = jwt
        self.secret = secret
        self.who = who
        self.hint = hint
        # PyJWT warns about HMAC keys shorter than 32 bytes on every call; the CLIs warn once.
        warnings.filterwarnings("ignore", message=".*HMAC key.*", module="jwt")
        warnings.filterwarnings(
            "ignore", category=getattr(jwt, "InsecureKeyLengthWarning", UserWarning)
        )

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    def unauthorized(self, message: str) -> Unauthorized:
        """The 401 for ``message``, naming the header to send and where tokens come from."""
        return Unauthorized(
            f"{self.who}: {message}. Send 'Authorization: Bearer <token>' with a token from "
            f"{self.hint}."
        )

    def authenticate(self, header: str | None) -> Principal:
        """The principal for an ``Authorization`` header value; :class:`Unauthorized` if bad."""
        if self.secret is None:
            return ANONYMOUS
        if not header:
            raise self.unauthorized("this server needs a token and the request carried none")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise self.unauthorized("the Authorization header is not 'Bearer <token>'")
        jwt = self._jwt
        try:
            # Time claims are checked below, strictly: PyJWT accepts "exp": "9999999999".
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={
                    "require": ["ns", "perm"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidTokenError:
            raise self.unauthorized(
                "the token is invalid (bad signature, algorithm or claims)"
            ) from None
        except Exception:  # whatever a signed-but-odd token trips in the library: still a 401
            raise self.unauthorized("the token could not be read") from None
        self._check_claims(claims, time.time())
        return self._principal(claims)

    def _whole(self, claims: dict[str, Any], name: str) -> int | None:
        value = claims.get(name)
        if value is None and name not in claims:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.unauthorized(
                f"the token's {name!r} claim must be a whole number of seconds since 1970 "
                f"(not {type(value).__name__})"
            )
        return value

    def _check_claims(self, claims: Any, now: float) -> None:
        """Refuse (401) unknown claims and badly typed or out-of-time ``exp``/``nbf``/``iat``."""
        if not isinstance(claims, dict):
            raise self.unauthorized("the token's payload is not a JSON object")
        unknown = sorted(str(k) for k in claims if k not in ALLOWED_CLAIMS)
        if unknown:
            raise self.unauthorized(
                f"the token carries claims this server does not know "
                f"({', '.join(unknown)[:200]}); only {', '.join(sorted(ALLOWED_CLAIMS))} are "
                "accepted"
            )
        exp, nbf = self._whole(claims, "exp"), self._whole(claims, "nbf")
        self._whole(claims, "iat")
        for name in ("iss", "sub", "jti"):
            if name in claims and not isinstance(claims[name], str):
                raise self.unauthorized(f"the token's {name!r} claim must be a string")
        if exp is not None and exp <= now - LEEWAY:
            raise self.unauthorized("the token has expired")
        if nbf is not None and nbf > now + LEEWAY:
            raise self.unauthorized("the token is not valid yet (its 'nbf' is in the future)")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        ns, perm = claims.get("ns"), claims.get("perm")
        if isinstance(ns, str):
            ns = [ns]
        if (
            not isinstance(ns, list)
            or not ns
            or not all(isinstance(p, str) and p and len(p) <= 1024 for p in ns)
        ):
            raise self.unauthorized("the token's 'ns' claim is not a list of namespace patterns")
        if not isinstance(perm, str) or perm not in RANK:
            raise self.unauthorized("the token's 'perm' claim is not read, write or admin")
        return Principal(tuple(ns), perm)
