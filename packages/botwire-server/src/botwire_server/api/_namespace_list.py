"""``GET /v1/namespaces``: the namespaces a token may see (added for the web console, issue 20).

A scoped token sees only the namespaces its ``ns`` patterns cover, so a tenant learns nothing
about other tenants' namespaces (not even a count). The listing reads the per-namespace
statistics through the store's ``list_namespaces`` capability (``bw_namespaces`` rows in ``ns``
byte order, without the ones that hold no keys) and filters by the token's patterns in Python
(they are ``fnmatch`` globs, not SQL). A page scans at most :data:`SCAN_LIMIT` rows: when a
scoped token matches few of many namespaces, a page may come back short, or even empty, with a
``cursor`` to go on from; the last page has ``cursor: null``.

Example::

    GET /v1/namespaces?prefix=tenant-42-&limit=100
    200 {"namespaces": [{"namespace": "tenant-42-alice", "keys": 12, "bytes": 3410}],
         "cursor": null}

``keys``/``bytes`` are the statistics row's counters: expired entries not yet purged still
count there; ``GET /v1/namespaces/{ns}`` gives the exact usage with limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument

from ..storage import StoreRunner
from ._context import context
from ._http import json_response, query_int
from ._schemas import errors, query_param

__all__ = ["SCAN_LIMIT", "install_namespace_list", "list_namespaces"]

#: Statistics rows one request reads at most (in chunks of :data:`_CHUNK`).
SCAN_LIMIT = 5000
_CHUNK = 500


async def _scan(
    runner: StoreRunner, covers: Callable[[str], bool], prefix: str, cursor: str | None, limit: int
) -> dict[str, Any]:
    """One page: up to ``limit`` covered namespaces after ``cursor``, scanning at most
    :data:`SCAN_LIMIT` rows (the store's ``list_namespaces``, in chunks); the cursor is the
    last row scanned (``None`` at the end)."""
    if not runner.supports("list_namespaces"):
        raise InvalidArgument(
            f"botwire: this server's store ({type(runner.store).__name__}) cannot list its "
            "namespaces (it lacks the optional capability list_namespaces); name the "
            "namespace instead: GET /v1/namespaces/{ns}."
        )
    found: list[dict[str, Any]] = []
    after, scanned = cursor, 0
    while scanned < SCAN_LIMIT:
        want = min(_CHUNK, SCAN_LIMIT - scanned)
        rows: list[tuple[str, int, int]] = await runner.call("list_namespaces", prefix, after, want)
        scanned += len(rows)
        for ns, keys, size in rows:
            after = ns
            if covers(ns):
                found.append({"namespace": ns, "keys": keys, "bytes": size})
                if len(found) == limit:
                    return {"namespaces": found, "cursor": ns}
        if len(rows) < want:
            return {"namespaces": found, "cursor": None}
    return {"namespaces": found, "cursor": after}


async def list_namespaces(request: Request) -> Response:
    """``?prefix=&cursor=&limit=`` (limit 1-1000, default 100) → namespaces the token covers."""
    ctx = context(request)
    principal = ctx.principal(request)  # 401 without a valid token on a server with tokens
    limit = query_int(request, "limit", 100, "", low=1, high=1000)
    assert limit is not None
    prefix = request.query_params.get("prefix", "")
    cursor = request.query_params.get("cursor") or None
    for name, text in (("prefix", prefix), ("cursor", cursor or "")):
        if "\x00" in text or len(text) > 128:
            raise InvalidArgument(
                f"botwire: query parameter {name} of GET /v1/namespaces must be at most 128 "
                "characters without NUL (namespaces are 1-128 characters)."
            )
    page = await _scan(ctx.store, principal.covers, prefix, cursor, limit)
    return json_response(page)


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
                    {"type": "string", "maxLength": 128},
                    "the cursor of the previous page",
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
