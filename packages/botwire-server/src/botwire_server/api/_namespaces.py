"""Namespace routes: list keys, batch, usage and clear (DESIGN §5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument
from botwire._wire import page_to_wire, usage_to_wire
from botwire.store._sql import MAX_BATCH_OPS  # one limit for every backend

from ._context import context
from ._http import idempotency_key, json_response, query_int, read_json, route_names
from ._keys import parse_op

__all__ = ["MAX_BATCH_OPS", "batch", "clear_namespace", "get_usage", "list_keys"]

PREFIX = b"/v1/namespaces/"


def _ns(request: Request) -> str:
    ns, _ = route_names(request, prefix=PREFIX, segment=None)
    return ns


async def list_keys(request: Request) -> Response:
    """One page of keys in UTF-8 byte order: ``?prefix=&cursor=&limit=`` (limit 1-1000)."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require(ns, write=False)
    limit = query_int(request, "limit", 1000, ns, low=1, high=1000)
    assert limit is not None
    prefix = request.query_params.get("prefix", "")
    cursor = request.query_params.get("cursor") or None
    for name, text in (("prefix", prefix), ("cursor", cursor or "")):
        if "\x00" in text or len(text.encode("utf-8", "surrogatepass")) > 1024:
            raise InvalidArgument(
                f"botwire: query parameter {name} must be a key-like string (no NUL, at most "
                "1024 bytes).",
                namespace=ns,
            )
    page = await ctx.store.list_keys(ns, prefix=prefix, cursor=cursor, limit=limit)
    return json_response(page_to_wire(page))


async def batch(request: Request) -> Response:
    """``{"ops": [...], "atomic": bool}`` → ``{"results": [...]}``; atomic failure → its status."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require(ns, write=False)
    ikey = idempotency_key(request, ns)
    body = await read_json(request, ctx.batch_limit, ns)
    raw_ops = body.get("ops")
    atomic = body.get("atomic", True)
    if not isinstance(raw_ops, list) or not isinstance(atomic, bool):
        raise InvalidArgument(
            f"botwire: a batch on namespace {ns!r} is {{\"ops\": [...], \"atomic\": true|false}}.",
            namespace=ns,
        )
    if len(raw_ops) > MAX_BATCH_OPS:
        raise InvalidArgument(
            f"botwire: a batch on namespace {ns!r} has {len(raw_ops)} ops; the limit is "
            f"{MAX_BATCH_OPS}. Split it into several batches.",
            namespace=ns,
        )
    ops = [parse_op(ns, d) for d in raw_ops]
    if any(op.mutates for op in ops):
        principal.require(ns, write=True)
    results = await ctx.store.batch(ns, ops, atomic=atomic, idempotency_key=ikey)
    return json_response({"results": results})


async def get_usage(request: Request) -> Response:
    """Keys, bytes and writes today of the namespace, with the limits in force."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require(ns, write=False)
    return json_response(usage_to_wire(await ctx.store.usage(ns)))


async def clear_namespace(request: Request) -> Response:
    """Delete every key of the namespace → ``{"deleted": n}``."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require(ns, write=True)
    return json_response({"deleted": await ctx.store.clear(ns)})
