"""``/v1/namespaces/{ns}/keys/{key}``: GET, PUT, PATCH, DELETE of one key (DESIGN §5)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from botwire import BotWireError, InvalidArgument, ValueTooLarge
from botwire._wire import op_from_wire
from botwire.store import Op

from ._context import context
from ._http import (
    NotFound,
    entry_json,
    etag_matches,
    header,
    idempotency_key,
    json_response,
    parse_version_header,
    query_int,
    read_json,
    route_names,
)

__all__ = [
    "check_append_items",
    "delete_key",
    "get_key",
    "key_names",
    "parse_op",
    "patch_key",
    "put_key",
]

PREFIX = b"/v1/namespaces/"
MAX_TAIL = 2**31 - 1


def key_names(request: Request) -> tuple[str, str]:
    ns, key = route_names(request, prefix=PREFIX, segment=b"keys/")
    assert key is not None
    return ns, key


def check_append_items(ns: str, fields: Any, limit: int) -> None:
    """Refuse (413) an append of more than ``limit`` items before its items are validated
    one by one (600k items would cost the event loop half a second just to be refused)."""
    if not isinstance(fields, dict):
        return
    items, key = fields.get("items"), fields.get("key")
    if isinstance(items, list) and len(items) > limit:
        raise ValueTooLarge(
            f"botwire: one append adds {len(items)} items to list {key!r} in namespace "
            f"{ns!r}; this server's max_append_items is {limit}. Append them in several "
            "calls (and use max_len= to keep the list bounded).",
            namespace=ns,
            key=key if isinstance(key, str) else None,
            quota="max_append_items",
            limit=limit,
        )


def parse_op(ns: str, fields: dict[str, Any]) -> Op:
    """An op from fields taken out of a request body, validated by :func:`op_from_wire`."""
    try:
        return op_from_wire(ns, fields)
    except BotWireError:
        raise
    except (ValueError, TypeError, RecursionError):
        raise InvalidArgument(
            f"botwire: a value for key {fields.get('key')!r} in namespace {ns!r} cannot be "
            "stored as JSON.",
            namespace=ns,
            key=fields.get("key"),
        ) from None


async def get_key(request: Request) -> Response:
    """The entry (``?tail=N``: the last N items of a list); 304 when ``If-None-Match`` matches."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = key_names(request)
    principal.require(ns, write=False)
    tail = query_int(request, "tail", None, ns, low=0, high=MAX_TAIL)
    found = await ctx.store.get_json(ns, key, tail=tail)
    if found is None:
        raise NotFound(
            f"botwire: key {key!r} does not exist in namespace {ns!r} (or it has expired).",
            namespace=ns,
            key=key,
        )
    version = found[1]
    etag = f'"{version}"'
    inm = header(request, b"if-none-match")
    if inm is not None and etag_matches(inm, version):
        return Response(status_code=304, headers={"ETag": etag})
    # The stored JSON text goes into the body as it is: no decode, no re-encode.
    return Response(entry_json(key, *found), headers={"ETag": etag}, media_type="application/json")


def _only(body: dict[str, Any], fields: tuple[str, ...], what: str, ns: str, key: str) -> None:
    """Refuse a body field ``what`` does not take: a misspelt ``"tll"`` would otherwise store
    a key that never expires, and the caller would never know."""
    unknown = sorted(set(body) - set(fields))
    if unknown:
        takes = ", ".join(repr(f) for f in fields)
        raise InvalidArgument(
            f"botwire: {what} of key {key!r} in namespace {ns!r} has unknown field(s) "
            f"{unknown}; its body takes {takes}.",
            namespace=ns,
            key=key,
        )


def _conditions(request: Request, ns: str, key: str, *, allow_absent: bool) -> dict[str, Any]:
    cond: dict[str, Any] = {}
    if_version = parse_version_header(header(request, b"if-match"), "If-Match", ns, key)
    if if_version is not None:
        cond["if_version"] = if_version
    inm = header(request, b"if-none-match")
    if inm is not None:
        if not allow_absent or inm.strip() != "*":
            raise InvalidArgument(
                "botwire: on writes If-None-Match only takes '*' (PUT: create only if absent).",
                namespace=ns,
                key=key,
            )
        cond["if_absent"] = True
    return cond


async def put_key(request: Request) -> Response:
    """Set the value (``{"value", "ttl"?}``); ``If-Match`` / ``If-None-Match: *`` conditions."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = key_names(request)
    principal.require(ns, write=True)
    cond = _conditions(request, ns, key, allow_absent=True)
    body = await read_json(request, ctx.single_limit, ns, key)
    if "value" not in body:
        raise InvalidArgument(
            f'botwire: PUT of key {key!r} in namespace {ns!r} needs a body {{"value": ...}}.',
            namespace=ns,
            key=key,
        )
    _only(body, ("value", "ttl"), "PUT", ns, key)
    # The conditions go in with the fields (validated the same way), not by replace() after.
    op = parse_op(
        ns, {"op": "set", "key": key, "value": body["value"], "ttl": body.get("ttl"), **cond}
    )
    result = (await ctx.store.batch(ns, [op], atomic=True))[0]
    return json_response(result, headers={"ETag": f'"{result["version"]}"'})


def _patch_op(ns: str, key: str, body: dict[str, Any], cond: dict[str, Any]) -> Op:
    present = [name for name in ("append", "incr", "pop") if name in body]
    if len(present) != 1:
        raise InvalidArgument(
            f"botwire: PATCH of key {key!r} in namespace {ns!r} takes exactly one of "
            '{"append": [...]}, {"incr": n} or {"pop": true}'
            f"{'' if not present else ', not ' + ' and '.join(present)}.",
            namespace=ns,
            key=key,
        )
    kind = present[0]
    _only(body, ("append", "max_len", "ttl") if kind == "append" else (kind,), "PATCH", ns, key)
    if kind == "append":
        return parse_op(
            ns,
            {
                "op": "append",
                "key": key,
                "items": body["append"],
                "max_len": body.get("max_len"),
                "ttl": body.get("ttl"),
                **cond,
            },
        )
    if kind == "incr":
        by = body["incr"]
        if isinstance(by, bool) or not isinstance(by, (int, float)):
            raise InvalidArgument(
                f"botwire: incr of key {key!r} in namespace {ns!r} needs a number.",
                namespace=ns,
                key=key,
            )
        return parse_op(ns, {"op": "incr", "key": key, "by": by, **cond})
    if body["pop"] is not True:
        raise InvalidArgument(
            f'botwire: PATCH {{"pop": ...}} of key {key!r} takes {{"pop": true}}.',
            namespace=ns,
            key=key,
        )
    return Op("pop", key, if_version=cond.get("if_version"))


async def patch_key(request: Request) -> Response:
    """``append`` / ``incr`` / ``pop``; an ``Idempotency-Key`` makes a retry apply once."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = key_names(request)
    principal.require(ns, write=True)
    cond = _conditions(request, ns, key, allow_absent=False)
    ikey = idempotency_key(request, ns)
    body = await read_json(request, ctx.single_limit, ns, key)
    if "append" in body:
        check_append_items(ns, {"key": key, "items": body["append"]}, ctx.settings.max_append_items)
    op = _patch_op(ns, key, body, cond)
    result = dict((await ctx.store.batch(ns, [op], atomic=True, idempotency_key=ikey))[0])
    if op.kind == "pop":
        result.setdefault("version", None)
    headers = {"ETag": f'"{result["version"]}"'} if result.get("version") is not None else None
    return json_response(result, headers=headers)


async def delete_key(request: Request) -> Response:
    """Delete (idempotent: ``{"deleted": false}`` when absent); ``If-Match`` optional; an
    ``Idempotency-Key`` makes a retry answer as the first attempt did (``true`` when that one
    deleted the key), not ``false`` for the key it found gone."""
    ctx = context(request)
    principal = ctx.principal(request)
    ns, key = key_names(request)
    principal.require(ns, write=True)
    cond = _conditions(request, ns, key, allow_absent=False)
    ikey = idempotency_key(request, ns)
    op = Op("delete", key, if_version=cond.get("if_version"))
    result = (await ctx.store.batch(ns, [op], atomic=True, idempotency_key=ikey))[0]
    return json_response(result)
