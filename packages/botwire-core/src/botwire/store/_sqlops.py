"""The operations of a batch, one handler each, in the table :data:`OPS` (op kind → handler).

A handler applies one :class:`~botwire.Op` inside the write transaction that
:class:`~botwire.store._sqlctx.Ctx` holds and returns the op's result; it raises botwire's
error for a refused op (the engine records it per op, or aborts an atomic batch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._codec import decode, dumps
from .._common import check_incr_by, check_max_len
from .._errors import InvalidArgument, NotSerializable, TypeMismatch
from .._types import Op
from ._sqlbase import EntryRow, json_type, list_bytes, utf8_len
from ._sqlplan import Plan
from ._sqltext import INSERT_ITEM_SQL, LIST, VALUE

if TYPE_CHECKING:
    from ._sqlctx import Ctx

Result = dict[str, Any]
Handler = Callable[["Ctx", Op], Plan[Result]]


def op_get(ctx: Ctx, op: Op) -> Plan[Result]:
    engine = ctx.engine
    rows = yield ("all", *engine.read_query(ctx.ns, op.key, op.tail, ctx.now, in_tx=True))
    return engine.result_from_rows(ctx.ns, op, rows)


def op_check(ctx: Ctx, op: Op) -> Plan[Result]:
    row = yield from ctx.load(op.key)
    current = row.version if row is not None else None
    if current != op.version:
        raise ctx.conflict(
            op, row, "the key to be absent" if op.version is None else f"version {op.version}"
        )
    return {"ok": True}


def op_set(ctx: Ctx, op: Op) -> Plan[Result]:
    if op.value is None:
        raise InvalidArgument(
            f"botwire: set of key {op.key!r} in namespace {ctx.ns!r} has no value.",
            namespace=ctx.ns,
            key=op.key,
        )
    row = yield from ctx.load(op.key)
    ctx.check_version(op, row)
    size = utf8_len(op.value)
    ctx.check_size(op.key, size)
    expires = ctx.expiry(op.key, op.ttl, row, keep=False)
    if row is not None and row.kind == LIST:
        yield from ctx.engine.rows.plan_drop(ctx.ns, op.key, row.length, row.tail)
    new = EntryRow(
        kind=VALUE,
        value=op.value,
        version=(yield from ctx.version()),
        created_at=row.created_at if row is not None else ctx.now,
        updated_at=ctx.now,
        expires_at=expires,
        bytes=utf8_len(op.key) + size,
    )
    yield from ctx.store(op.key, row, new)
    return {"version": new.version}


def op_delete(ctx: Ctx, op: Op) -> Plan[Result]:
    row = yield from ctx.load(op.key)
    if op.if_version is not None and (row is None or row.version != op.if_version):
        raise ctx.conflict(op, row, f"version {op.if_version}")
    if row is None:
        return {"deleted": False}
    yield from ctx.remove(op.key, row)
    ctx.deleted.add(op.key)  # its records go at the end of the request
    return {"deleted": True}


def op_append(ctx: Ctx, op: Op) -> Plan[Result]:
    check_max_len(ctx.ns, op.key, op.max_len)  # the client's check, for raw HTTP requests
    engine = ctx.engine
    if engine.max_append_items and len(op.items) > engine.max_append_items:
        raise ctx.list_limit(
            op,
            f"one append adds {len(op.items)} items",
            "max_append_items",
            engine.max_append_items,
            "append them in several calls",
        )
    row = yield from ctx.load(op.key)
    ctx.check_version(op, row)
    sizes = [utf8_len(t) for t in op.items]
    for size in sizes:
        ctx.check_size(op.key, size, "list item")
    expires = ctx.expiry(op.key, op.ttl, row, keep=True)
    ctx.check_list_growth(op, row, len(op.items), sum(sizes))
    head, tail, length, content = yield from ctx.list_of(op, row, "append")
    if op.items:
        yield (
            "many",
            INSERT_ITEM_SQL,
            [
                (ctx.ns, op.key, tail + i, t, s)
                for i, (t, s) in enumerate(zip(op.items, sizes, strict=True))
            ],
        )
    tail += len(op.items)
    length += len(op.items)
    content += sum(sizes)
    max_len = ctx.max_len(op)  # the policy's max_list_len lowers a larger one
    if max_len is not None and length > max_len:
        content = yield from ctx.trim(op.key, head, tail, max_len, content)
        head = tail - max_len
        length = max_len
    new = EntryRow(
        kind=LIST,
        value=None,
        version=(yield from ctx.version()),
        created_at=row.created_at if row is not None else ctx.now,
        updated_at=ctx.now,
        expires_at=expires,
        bytes=list_bytes(utf8_len(op.key), content, length),
        length=length,
        head=head,
        tail=tail,
    )
    grew = row is None or new.bytes > row.bytes or length > row.length
    if grew and engine.max_list_length and length > engine.max_list_length:
        raise ctx.list_limit(
            op,
            f"the list would hold {length} items after this append",
            "max_list_length",
            engine.max_list_length,
            "delete it or start a new key",
        )
    if grew and engine.max_list_bytes and new.bytes > engine.max_list_bytes:
        raise ctx.list_limit(
            op,
            f"the list would hold {new.bytes} bytes of JSON after this append",
            "max_list_bytes",
            engine.max_list_bytes,
            "delete it or start a new key",
        )
    yield from ctx.store(op.key, row, new)
    return {"version": new.version, "length": length}


def op_incr(ctx: Ctx, op: Op) -> Plan[Result]:
    by = check_incr_by(ctx.ns, op.key, op.by)  # the client's check, for raw HTTP requests
    row = yield from ctx.load(op.key)
    ctx.check_version(op, row)
    current: Any = 0
    if row is not None:
        current = decode(row.value or "null") if row.kind == VALUE else []
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise TypeMismatch(
                f"botwire: incr needs a number, but key {op.key!r} in namespace {ctx.ns!r} "
                f"holds a {json_type(current)}; set() it to a number first or use another "
                "key.",
                namespace=ctx.ns,
                key=op.key,
            )
    try:
        # float + huge int raises OverflowError; an int result past Python's 4300-digit
        # str limit raises ValueError in dumps: both are the client's numbers, a 400.
        value = current + by
        if isinstance(value, float) and not math.isfinite(value):
            raise OverflowError(value)
        text = dumps(value)
    except (OverflowError, ValueError):
        raise NotSerializable(
            f"botwire: incr of key {op.key!r} in namespace {ctx.ns!r} leaves the range "
            "of numbers this store holds (finite floats, integers of at most 4300 digits);"
            " use a smaller amount or set() the key to a new value.",
            namespace=ctx.ns,
            key=op.key,
        ) from None
    new = EntryRow(
        kind=VALUE,
        value=text,
        version=(yield from ctx.version()),
        created_at=row.created_at if row is not None else ctx.now,
        updated_at=ctx.now,
        expires_at=row.expires_at if row is not None else ctx.new_expiry(op.key),
        bytes=utf8_len(op.key) + utf8_len(text),
    )
    yield from ctx.store(op.key, row, new)
    return {"version": new.version, "value": value}


def op_pop(ctx: Ctx, op: Op) -> Plan[Result]:
    row = yield from ctx.load(op.key)
    ctx.check_version(op, row)
    if row is None:
        return {"found": False, "value": None}
    if row.kind == VALUE:
        array = decode(row.value or "null")
        if not isinstance(array, list):
            raise ctx.engine._not_a_list(ctx.ns, op.key, array, "pop")
        if not array:
            return {"found": False, "value": None}
        item = array.pop()
        text = dumps(array)
        new = EntryRow(
            kind=VALUE,
            value=text,
            version=(yield from ctx.version()),
            created_at=row.created_at,
            updated_at=ctx.now,
            expires_at=row.expires_at,
            bytes=utf8_len(op.key) + utf8_len(text),
        )
        yield from ctx.store(op.key, row, new)
        return {"found": True, "value": item, "version": new.version}
    if row.length == 0:
        return {"found": False, "value": None}
    where, params = ctx.engine.rows.match(ctx.ns, op.key)
    gone = yield (
        "one",
        f"DELETE FROM bw_items WHERE {where} AND seq = ? RETURNING value, bytes",
        (*params, row.tail - 1),
    )
    assert gone is not None, "list rows out of step with their entry"
    _, _, length, content = yield from ctx.list_of(op, row, "pop")
    new = EntryRow(
        kind=LIST,
        value=None,
        version=(yield from ctx.version()),
        created_at=row.created_at,
        updated_at=ctx.now,
        expires_at=row.expires_at,
        bytes=list_bytes(utf8_len(op.key), content - gone[1], length - 1),
        length=length - 1,
        head=row.head,
        tail=row.tail - 1,
    )
    yield from ctx.store(op.key, row, new)
    return {"found": True, "value": decode(gone[0]), "version": new.version}


#: Every operation a batch may hold: its kind (``Op.kind``) → its handler.
OPS: dict[str, Handler] = {
    "get": op_get,
    "check": op_check,
    "set": op_set,
    "delete": op_delete,
    "append": op_append,
    "incr": op_incr,
    "pop": op_pop,
}
#: The kinds that count against ``writes_per_day`` (a delete or check frees or reads).
WRITES = frozenset(("set", "append", "incr", "pop"))
