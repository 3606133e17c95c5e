"""The original hosted service's routes (``/memory/...``), answered over the same store.

Values there are strings; they are stored as JSON strings, so ``Memory.get`` sees a ``str``.
A value written through ``/v1`` that is not a string is returned as its JSON text.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument
from botwire._codec import dumps
from botwire.store import Op

from ._context import context
from ._http import NotFound, json_response, query_int, read_json, route_names

__all__ = ["compat_delete", "compat_get", "compat_list", "compat_put"]

PREFIX = b"/memory/"


def _names(request: Request) -> tuple[str, str]:
    ns, key = route_names(request, prefix=PREFIX, segment=b"")
    assert key is not None
    return ns, key


def _missing(ns: str, key: str) -> NotFound:
    return NotFound(f"Key not found: {ns}/{key}", namespace=ns, key=key)


async def compat_put(request: Request) -> Response:
    """``{"value": "<string>"}`` → ``{"namespace","key","stored":true,"bytes"}``."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = _names(request)
    principal.require(ns, write=True)
    body = await read_json(request, ctx.single_limit, ns, key)
    value = body.get("value")
    if not isinstance(value, str):
        raise InvalidArgument(
            f'botwire: PUT /memory/{ns}/... takes {{"value": "<string>"}}; use the /v1 API '
            "to store other JSON values.",
            namespace=ns,
            key=key,
        )
    await ctx.store.batch(ns, [Op("set", key, value=dumps(value))], atomic=True)
    return json_response(
        {"namespace": ns, "key": key, "stored": True, "bytes": len(value.encode("utf-8"))}
    )


async def compat_get(request: Request) -> Response:
    """``{"namespace","key","value","created_at","updated_at"}``; 404 when absent."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = _names(request)
    principal.require(ns, write=False)
    entry = await ctx.store.get(ns, key)
    if entry is None:
        raise _missing(ns, key)
    value = entry.value if isinstance(entry.value, str) else dumps(entry.value)
    return json_response(
        {
            "namespace": ns,
            "key": key,
            "value": value,
            "created_at": entry.created_at,
            "updated_at": entry.updated_at,
        }
    )


async def compat_delete(request: Request) -> Response:
    """``{"deleted":true,"namespace","key"}``; 404 when absent, as the original answered."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = _names(request)
    principal.require(ns, write=True)
    result = (await ctx.store.batch(ns, [Op("delete", key)], atomic=True))[0]
    if not result["deleted"]:
        raise _missing(ns, key)
    return json_response({"deleted": True, "namespace": ns, "key": key})


async def compat_list(request: Request) -> Response:
    """``?limit=N`` (1-1000, default 100) → the N most recently updated keys, newest first (in
    commit order: their versions)."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, _ = route_names(request, prefix=PREFIX, segment=None)
    principal.require(ns, write=False)
    limit = query_int(request, "limit", 100, ns, low=1, high=1000)
    assert limit is not None
    recent = await ctx.store.recent_keys(ns, limit)
    if recent is not None:  # read along an index, newest first: no sort of the namespace
        shown = [{"key": k, "bytes": b, "updated_at": u} for k, b, u in recent]
        return json_response({"namespace": ns, "count": len(shown), "keys": shown})
    keys = []
    cursor: str | None = None
    while True:  # every page: recency order needs the whole namespace
        page = await ctx.store.list_keys(ns, cursor=cursor, limit=1000)
        keys.extend(page.keys)
        if page.cursor is None:
            break
        cursor = page.cursor
    keys.sort(key=lambda k: (k.version, k.key), reverse=True)  # commit order, as recent_keys
    shown = [{"key": k.key, "bytes": k.bytes, "updated_at": k.updated_at} for k in keys[:limit]]
    return json_response({"namespace": ns, "count": len(shown), "keys": shown})
