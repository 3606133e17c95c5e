"""Namespace routes: list keys, batch, usage and clear (DESIGN §5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from botwire import InvalidArgument, ValueTooLarge
from botwire._policy import check_policy
from botwire._wire import page_to_wire, usage_to_wire
from botwire.store import Op
from botwire.store._sql import MAX_BATCH_OPS  # one limit for every backend

from ._context import ServerContext, context
from ._http import idempotency_key, json_response, query_int, read_json, route_names
from ._keys import check_append_items, parse_op

__all__ = [
    "MAX_BATCH_OPS",
    "batch",
    "clear_namespace",
    "get_policy",
    "get_usage",
    "list_keys",
    "set_policy",
]

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
            f'botwire: a batch on namespace {ns!r} is {{"ops": [...], "atomic": true|false}}.',
            namespace=ns,
        )
    if len(raw_ops) > MAX_BATCH_OPS:
        raise InvalidArgument(
            f"botwire: a batch on namespace {ns!r} has {len(raw_ops)} ops; the limit is "
            f"{MAX_BATCH_OPS}. Split it into several batches.",
            namespace=ns,
        )
    for d in raw_ops:
        check_append_items(ns, d, ctx.settings.max_append_items)
    ops = [parse_op(ns, d) for d in raw_ops]
    mutating = any(op.mutates for op in ops)
    if mutating:
        principal.require(ns, write=True)
    else:
        ikey = None  # a read changes nothing: no record to keep (issue 13)
    gets = [op.key for op in ops if op.kind == "get"]
    if gets and not mutating and len(gets) == len(ops):
        texts = await _read_gets(ctx, ns, ops, gets)
        if texts is not None:  # values spliced in as stored: no decode, no re-encode
            return Response(
                ('{"results":[' + ",".join(texts) + "]}").encode(), media_type="application/json"
            )
    else:
        await _check_response_budget(ctx, ns, gets, decoded=mutating)
    results = await ctx.store.batch(ns, ops, atomic=atomic, idempotency_key=ikey)
    return json_response({"results": results})


#: Gets inside a write batch are decoded into objects (several times their bytes in memory),
#: so they get this fraction of the response budget.
DECODED_SHARE = 16


#: Answers above this many bytes are read off the event loop (``StoreRunner.read_batch_json``).
LARGE_ANSWER = 1 << 20


async def _read_gets(
    ctx: ServerContext, ns: str, ops: list[Op], keys: list[str]
) -> list[str] | None:
    """A batch of gets only, each result's JSON text with the value as stored (``None``: the
    store cannot; its ``batch`` answers then), refused (413) over the response budget before
    any value is read. On PostgreSQL the budget's look-up rides with the read, one statement
    (``read_batch_json_within``); elsewhere, or for an answer over :data:`LARGE_ANSWER` (read
    in a worker thread), the sizes are looked up first."""
    cap = _response_cap(ctx, keys, decoded=False)
    if cap is None:
        return await ctx.store.read_batch_json(ns, ops)
    found = await ctx.store.read_batch_json_within(ns, ops, min(cap, LARGE_ANSWER))
    if found is None:
        size = await ctx.store.stored_bytes(ns, keys)
    else:
        size, texts = found
        if texts is not None:
            return texts
    _refuse_over(ns, len(keys), size, cap, decoded=False)
    return await ctx.store.read_batch_json(ns, ops, large=(size or 0) > LARGE_ANSWER)


def _response_cap(ctx: ServerContext, keys: list[str], *, decoded: bool) -> int | None:
    """The most bytes the gets ``keys`` of a batch may answer; ``None`` when not checked (no
    budget, no gets, or one whole entry, within the budget already by the list and value
    limits)."""
    budget = ctx.settings.max_response_bytes
    if not budget or not keys or (len(keys) == 1 and not decoded):
        return None
    return max(budget // DECODED_SHARE, ctx.settings.max_value_bytes) if decoded else budget


async def _check_response_budget(
    ctx: ServerContext, ns: str, keys: list[str], *, decoded: bool
) -> None:
    """Refuse (413) a write batch whose gets would answer more than the response budget,
    before reading them (one indexed look-up of the entries' sizes)."""
    cap = _response_cap(ctx, keys, decoded=decoded)
    if cap is not None:
        size = await ctx.store.stored_bytes(ns, keys)
        _refuse_over(ns, len(keys), size, cap, decoded=decoded)


def _refuse_over(ns: str, gets: int, size: int | None, cap: int, *, decoded: bool) -> None:
    """413 when ``size`` (``None``: unknown) is over ``cap``."""
    if size is not None and size > cap:
        raise ValueTooLarge(
            f"botwire: the {gets} gets of this batch on namespace {ns!r} would answer "
            f"{size} bytes; this server answers at most {cap} bytes per "
            f"{'write ' if decoded else ''}batch (max_response_bytes). Read fewer keys per "
            "batch (get_many in smaller chunks), or lists with tail=N.",
            namespace=ns,
            quota="max_response_bytes",
            limit=cap,
            size=size,
        )


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
    ikey = idempotency_key(request, ns)  # a retry answers the count the first attempt cleared
    return json_response({"deleted": await ctx.store.clear(ns, idempotency_key=ikey)})


async def get_policy(request: Request) -> Response:
    """The namespace's retention policy in force → ``{"namespace", "policy"}`` (read access)."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require(ns, write=False)
    policy = await ctx.store.get_policy(ns)
    return json_response({"namespace": ns, "policy": policy.as_dict()})


async def set_policy(request: Request) -> Response:
    """Change the namespace's retention policy (admin tokens only): ``{"default_ttl"?,
    "max_list_len"?, "max_idle"?}``, a field ``null`` follows the server's default, ``0``
    turns the rule off; fields left out keep their value. Idempotent (a PUT)."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns = _ns(request)
    principal.require_admin(ns, "set a retention policy")
    body = await read_json(request, ctx.single_limit, ns)
    changes = check_policy(ns, body)
    policy = await ctx.store.set_policy(ns, changes)
    return json_response({"namespace": ns, "policy": policy.as_dict()})
