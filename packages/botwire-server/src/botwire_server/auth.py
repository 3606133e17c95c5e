"""Bearer-token authorization (DESIGN §7): HS256 JWTs scoped to namespace globs.

Claims: ``ns`` (a list of glob patterns such as ``"tenant-42-*"``), ``perm`` (``read``,
``write`` or ``admin``) and ``exp``. Tokens are read from the ``Authorization`` header only and
never logged.

Claims are validated strictly, so a signed but malformed token is a 401, never a 500 and never
a looser reading: ``ns`` a string or a non-empty list of non-empty strings, ``perm`` one of the
three strings, ``exp``/``nbf``/``iat`` whole numbers (not strings, not booleans), and no claim
outside ``ns``, ``perm`` and the registered JWT claims (``exp nbf iat iss sub jti``; ``aud`` is
refused since this server has no audience). ``admin`` grants exactly what ``write`` grants, on
the namespaces its ``ns`` patterns cover: no route needs more, and no claim reaches beyond its
patterns.

Example::

    from botwire_server.auth import mint_token, Authorizer

    token = mint_token("s3cret-at-least-32-bytes-long-000", ["tenant-42-*"], perm="write",
                       expires_in=30 * 86400)
    principal = Authorizer("s3cret-at-least-32-bytes-long-000").authenticate(
        "Bearer " + token)
    assert principal.allows("tenant-42-alice", write=True)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import jwt

from botwire import Forbidden, Unauthorized

__all__ = ["PERMS", "Authorizer", "Principal", "mint_token", "parse_duration"]

PERMS = ("read", "write", "admin")
_RANK = {p: i for i, p in enumerate(PERMS)}
ALGORITHM = "HS256"

# PyJWT warns about HMAC keys shorter than 32 bytes on every call; the server warns once instead.
warnings.filterwarnings("ignore", message=".*HMAC key.*", module="jwt")
warnings.filterwarnings("ignore", category=getattr(jwt, "InsecureKeyLengthWarning", UserWarning))


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
        return not write or _RANK[self.perm] >= _RANK["write"]

    def require(self, namespace: str, *, write: bool) -> None:
        """Raise :class:`Forbidden` unless this principal may read (or write) ``namespace``."""
        if not self.covers(namespace):
            raise Forbidden(
                f"botwire: this token does not cover namespace {namespace!r} (it covers "
                f"{', '.join(map(repr, self.patterns)) or 'no namespace'}); mint a token whose "
                "'ns' patterns include it.",
                namespace=namespace,
            )
        if write and _RANK[self.perm] < _RANK["write"]:
            raise Forbidden(
                f"botwire: this token is read-only, so it cannot write namespace {namespace!r}; "
                "use a token minted without --read-only.",
                namespace=namespace,
            )


ANONYMOUS = Principal((), "admin", anonymous=True)


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(
        f"botwire: {message}. Send 'Authorization: Bearer <token>' with a token from "
        "'botwire-server token create' (tokens in the URL are ignored)."
    )


class Authorizer:
    """Checks ``Authorization`` headers against one HS256 secret (``None``: anonymous server)."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    def authenticate(self, header: str | None) -> Principal:
        """The principal for an ``Authorization`` header value; :class:`Unauthorized` if bad."""
        if self.secret is None:
            return ANONYMOUS
        if not header:
            raise _unauthorized("this server needs a token and the request carried none")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header is not 'Bearer <token>'")
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
            raise _unauthorized(
                "the token is invalid (bad signature, algorithm or claims)"
            ) from None
        except Exception:  # whatever a signed-but-odd token trips in the library: still a 401
            raise _unauthorized("the token could not be read") from None
        _check_claims(claims, time.time())
        return _principal(claims)


#: The claims a token may carry: ours, and the registered JWT claims this server understands.
ALLOWED_CLAIMS = frozenset({"ns", "perm", "exp", "nbf", "iat", "iss", "sub", "jti"})
#: Leeway for clock differences between the minting host and this server (seconds).
LEEWAY = 0


def _whole(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _unauthorized(
            f"the token's {name!r} claim must be a whole number of seconds since 1970 "
            f"(not {type(value).__name__})"
        )
    return value


def _check_claims(claims: Any, now: float) -> None:
    """Refuse (401) unknown claims and badly typed or out-of-time ``exp``/``nbf``/``iat``."""
    if not isinstance(claims, dict):
        raise _unauthorized("the token's payload is not a JSON object")
    unknown = sorted(str(k) for k in claims if k not in ALLOWED_CLAIMS)
    if unknown:
        raise _unauthorized(
            f"the token carries claims this server does not know ({', '.join(unknown)[:200]}); "
            f"only {', '.join(sorted(ALLOWED_CLAIMS))} are accepted"
        )
    exp, nbf = _whole(claims, "exp"), _whole(claims, "nbf")
    _whole(claims, "iat")
    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise _unauthorized(f"the token's {name!r} claim must be a string")
    if exp is not None and exp <= now - LEEWAY:
        raise _unauthorized("the token has expired")
    if nbf is not None and nbf > now + LEEWAY:
        raise _unauthorized("the token is not valid yet (its 'nbf' is in the future)")


def _principal(claims: dict[str, Any]) -> Principal:
    ns, perm = claims.get("ns"), claims.get("perm")
    if isinstance(ns, str):
        ns = [ns]
    if (
        not isinstance(ns, list)
        or not ns
        or not all(isinstance(p, str) and p and len(p) <= 1024 for p in ns)
    ):
        raise _unauthorized("the token's 'ns' claim is not a list of namespace patterns")
    if not isinstance(perm, str) or perm not in _RANK:
        raise _unauthorized("the token's 'perm' claim is not read, write or admin")
    return Principal(tuple(ns), perm)


def mint_token(
    secret: str,
    patterns: list[str],
    *,
    perm: str = "write",
    expires_in: float | None = None,
    now: float | None = None,
) -> str:
    """A signed token for ``patterns`` with ``perm``; ``expires_in`` seconds (``None``: never)."""
    if perm not in _RANK:
        raise ValueError(f"perm must be one of {PERMS}, not {perm!r}")
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError("give at least one namespace pattern, e.g. 'tenant-42-*'")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"ns": list(patterns), "perm": perm, "iat": issued}
    if expires_in is not None:
        claims["exp"] = issued + int(expires_in)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> float | None:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"3600"`` → seconds; ``"never"`` → None."""
    text = text.strip().lower()
    if text in ("never", "none", "0"):
        return None
    unit = _UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"cannot read duration {text!r}; use e.g. 30d, 12h, 90m or 3600") from None
    if value <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return value
