"""Bearer-token authorization (DESIGN §7): HS256 JWTs scoped to namespace globs.

Verification (:class:`Authorizer`, :class:`Principal`) is defined once in ``botwire._tokens``
and shared with botwire-mcp; this module adds minting and the CLI's duration parser.

Claims: ``ns`` (a list of glob patterns such as ``"tenant-42-*"``), ``perm`` (``read``,
``write`` or ``admin``) and ``exp``. Tokens are read from the ``Authorization`` header only and
never logged.

Claims are validated strictly, so a signed but malformed token is a 401, never a 500 and never
a looser reading: ``ns`` a string or a non-empty list of non-empty strings, ``perm`` one of the
three strings, ``exp``/``nbf``/``iat`` whole numbers (not strings, not booleans), and no claim
outside ``ns``, ``perm`` and the registered JWT claims (``exp nbf iat iss sub jti``; ``aud`` is
refused since this server has no audience). ``admin`` grants what ``write`` grants and, since
issue 18, setting a namespace's retention policy (``PUT /v1/namespaces/{ns}/policy``), on the
namespaces its ``ns`` patterns cover: no claim reaches beyond its patterns.

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
from typing import Any

import jwt

# One definition of token verification, shared with botwire-mcp (botwire/_tokens.py).
from botwire._tokens import ALGORITHM, ANONYMOUS, PERMS, RANK, Authorizer, Principal

__all__ = ["ANONYMOUS", "PERMS", "Authorizer", "Principal", "mint_token", "parse_duration"]


def mint_token(
    secret: str,
    patterns: list[str],
    *,
    perm: str = "write",
    expires_in: float | None = None,
    now: float | None = None,
) -> str:
    """A signed token for ``patterns`` with ``perm``; ``expires_in`` seconds (``None``: never)."""
    if perm not in RANK:
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
