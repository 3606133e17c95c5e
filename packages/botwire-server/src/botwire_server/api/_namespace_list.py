"""``GET /v1/namespaces``: the namespaces a token may see (added for the web console, issue 20).

A scoped token sees only the namespaces its ``ns`` patterns cover, so a tenant learns nothing
about other tenants' namespaces: not their names, not even a count. The listing reads the
per-namespace statistics through the store's ``list_namespaces`` capability (``bw_namespaces``
rows in ``ns`` byte order, without the ones that hold no keys) and filters by the token's
patterns in Python (they are ``fnmatch`` globs, not SQL).

Only the rows a pattern could match are read: every name ``tenant-42-*`` matches starts with
``tenant-42-``, so a token of such patterns scans those prefixes (:func:`scan_ranges`) and never
touches another tenant's rows. A pattern that starts with a wildcard (``*-prod``) needs a scan
of everything; a page then reads at most :data:`SCAN_LIMIT` rows and may come back short, or
even empty, with a ``cursor`` to go on from; the last page has ``cursor: null``.

The cursor is where the scan stopped, which may be a namespace the token does not cover, so
it is sealed (:func:`seal_cursor`): encrypted, padded to one length and authenticated with a
key derived from the server's token secret, and bound to the token's patterns and the prefix.
It reveals nothing; an altered one, or one of another token or prefix, is a 400.

Example::

    GET /v1/namespaces?prefix=tenant-42-&limit=100
    200 {"namespaces": [{"namespace": "tenant-42-alice", "keys": 12, "bytes": 3410}],
         "cursor": null}

``keys``/``bytes`` are the statistics row's counters: expired entries not yet purged still
count there; ``GET /v1/namespaces/{ns}`` gives the exact usage with limits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument

from ..auth import Principal
from ..storage import StoreRunner
from ._context import context
from ._http import json_response, query_int
from ._schemas import errors, query_param

__all__ = [
    "SCAN_LIMIT",
    "install_namespace_list",
    "list_namespaces",
    "open_cursor",
    "scan_ranges",
    "seal_cursor",
]

#: Statistics rows one request reads at most (in chunks of :data:`_CHUNK`).
SCAN_LIMIT = 5000
_CHUNK = 500

# -- the sealed cursor ---------------------------------------------------------------------
# stdlib only: HMAC-SHA256 as the PRF of a counter-mode stream cipher (random nonce), then
# HMAC-SHA256 over the ciphertext and the binding (encrypt-then-MAC, two derived keys).
_VERSION = b"\x01"
_NONCE = 16
_TAG = 16
_PADDED = 128  # namespaces are 1-128 ASCII characters: every cursor has one length
_CURSOR_MAX = 256  # characters of base64: what a sealed cursor takes, with room


def _keys(secret: str | None) -> tuple[bytes, bytes]:
    """(encryption key, authentication key) from the token secret. An anonymous server has
    none: every caller sees every namespace there, so its cursors have nothing to hide."""
    master = hmac.digest((secret or "").encode(), b"botwire namespace-list cursor", "sha256")
    return hmac.digest(master, b"encrypt", "sha256"), hmac.digest(master, b"authenticate", "sha256")


def _binding(principal: Principal, prefix: str) -> bytes:
    """What a cursor is valid for: this token's patterns and this prefix."""
    scope = [principal.anonymous, sorted(principal.patterns), prefix]
    return hashlib.sha256(json.dumps(scope).encode()).digest()


def _xor_stream(key: bytes, nonce: bytes, data: bytes) -> bytes:
    blocks = (len(data) + 31) // 32
    stream = b"".join(
        hmac.digest(key, nonce + i.to_bytes(4, "big"), "sha256") for i in range(blocks)
    )
    return bytes(a ^ b for a, b in zip(data, stream[: len(data)], strict=True))


def seal_cursor(secret: str | None, principal: Principal, prefix: str, position: str) -> str:
    """The opaque cursor for a scan that stopped at ``position`` (a namespace name)."""
    enc, mac = _keys(secret)
    nonce = os.urandom(_NONCE)
    body = _xor_stream(enc, nonce, position.encode().ljust(_PADDED, b"\0"))
    tag = hmac.digest(mac, _VERSION + nonce + body + _binding(principal, prefix), "sha256")
    return base64.urlsafe_b64encode(_VERSION + nonce + body + tag[:_TAG]).rstrip(b"=").decode()


def open_cursor(secret: str | None, principal: Principal, prefix: str, cursor: str) -> str:
    """The position sealed in ``cursor``; :class:`InvalidArgument` (400) unless this server
    sealed it for these patterns and this prefix, unaltered."""
    enc, mac = _keys(secret)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    head, body, tag = raw[: 1 + _NONCE], raw[1 + _NONCE : -_TAG], raw[-_TAG:]
    ok = len(raw) > 1 + _NONCE + _TAG and head[:1] == _VERSION
    want = hmac.digest(mac, head + body + _binding(principal, prefix), "sha256")[:_TAG]
    if not (ok and hmac.compare_digest(tag, want)):
        raise InvalidArgument(
            "botwire: the cursor of GET /v1/namespaces is not one this server gave for this "
            "token and prefix (altered, copied from another token or prefix, or the server's "
            "token secret changed); nothing was listed. Start again without a cursor."
        )
    return _xor_stream(enc, head[1:], body).rstrip(b"\0").decode()


# -- the scan ------------------------------------------------------------------------------


def _literal(pattern: str) -> str:
    """The part of a glob before its first wildcard: every name it matches starts with it."""
    cut = min((i for i in (pattern.find(c) for c in "*?[") if i >= 0), default=len(pattern))
    return pattern[:cut]


def scan_ranges(principal: Principal, prefix: str) -> list[str]:
    """The name prefixes to scan for ``prefix``, in byte order and none inside another: only
    where the token's patterns could match (``[]``: nowhere)."""
    if principal.anonymous:
        return [prefix]
    found: set[str] = set()
    for pattern in principal.patterns:
        literal = _literal(pattern)
        if literal.startswith(prefix):
            found.add(literal)
        elif prefix.startswith(literal):
            found.add(prefix)
    ranges: list[str] = []
    for r in sorted(found, key=str.encode):
        if not (ranges and r.startswith(ranges[-1])):  # inside the previous range already
            ranges.append(r)
    return ranges


async def _scan(
    runner: StoreRunner, principal: Principal, prefix: str, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page: up to ``limit`` covered namespaces after ``after``, scanning at most
    :data:`SCAN_LIMIT` rows (the store's ``list_namespaces``, in chunks, range by range); and
    the name where the scan stopped (``None`` at the end)."""
    if not runner.supports("list_namespaces"):
        raise InvalidArgument(
            f"botwire: this server's store ({type(runner.store).__name__}) cannot list its "
            "namespaces (it lacks the optional capability list_namespaces); name the "
            "namespace instead: GET /v1/namespaces/{ns}."
        )
    found: list[dict[str, Any]] = []
    scanned = 0
    position = after  # the last row scanned: where the next page goes on from
    for part in scan_ranges(principal, prefix):
        start = after if after is not None and after.startswith(part) else None
        if after is not None and start is None and after.encode() > part.encode():
            continue  # the whole range lies before the cursor
        while True:
            if scanned >= SCAN_LIMIT:
                return found, position
            want = min(_CHUNK, SCAN_LIMIT - scanned)
            rows: list[tuple[str, int, int]] = await runner.call(
                "list_namespaces", part, start, want
            )
            scanned += len(rows)
            for ns, keys, size in rows:
                start = position = ns
                if principal.covers(ns):
                    found.append({"namespace": ns, "keys": keys, "bytes": size})
                    if len(found) == limit:
                        return found, ns
            if len(rows) < want:
                break  # this range is done
    return found, None


async def list_namespaces(request: Request) -> Response:
    """``?prefix=&cursor=&limit=`` (limit 1-1000, default 100) → namespaces the token covers."""
    ctx = context(request)
    principal = ctx.principal(request)  # 401 without a valid token on a server with tokens
    limit = query_int(request, "limit", 100, "", low=1, high=1000)
    assert limit is not None
    prefix = request.query_params.get("prefix", "")
    cursor = request.query_params.get("cursor") or None
    if "\x00" in prefix or len(prefix) > 128:
        raise InvalidArgument(
            "botwire: query parameter prefix of GET /v1/namespaces must be at most 128 "
            "characters without NUL (namespaces are 1-128 characters)."
        )
    if cursor is not None and len(cursor) > _CURSOR_MAX:
        raise InvalidArgument(
            f"botwire: query parameter cursor of GET /v1/namespaces is at most {_CURSOR_MAX} "
            "characters: pass the cursor of the previous page unchanged."
        )
    secret = ctx.authorizer.secret
    after = open_cursor(secret, principal, prefix, cursor) if cursor else None
    found, stop = await _scan(ctx.store, principal, prefix, after, limit)
    sealed = seal_cursor(secret, principal, prefix, stop) if stop is not None else None
    return json_response({"namespaces": found, "cursor": sealed})


def install_namespace_list(app: FastAPI) -> None:
    """Add ``GET /v1/namespaces`` to ``app`` (documented in the OpenAPI schema)."""
    app.add_api_route(
        "/v1/namespaces",
        list_namespaces,
        methods=["GET"],
        tags=["namespaces"],
        summary="List the namespaces this token may see (byte order, paged)",
        responses={
            200: {
                "description": "one page; cursor is null on the last",
                "content": {"application/json": {"schema": _PAGE_SCHEMA}},
            },
            **errors(),
        },
        openapi_extra={
            "parameters": [
                query_param(
                    "prefix",
                    {"type": "string", "maxLength": 128},
                    "only namespaces starting with this",
                ),
                query_param(
                    "cursor",
                    {"type": "string", "maxLength": _CURSOR_MAX},
                    "the cursor of the previous page (opaque)",
                ),
                query_param(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                    "namespaces per page (default 100)",
                ),
            ]
        },
    )


_PAGE_SCHEMA = {
    "type": "object",
    "required": ["namespaces", "cursor"],
    "properties": {
        "namespaces": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["namespace", "keys", "bytes"],
                "properties": {
                    "namespace": {"type": "string"},
                    "keys": {"type": "integer"},
                    "bytes": {"type": "integer"},
                },
            },
        },
        "cursor": {"type": ["string", "null"]},
    },
}
