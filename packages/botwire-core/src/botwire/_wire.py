"""The HTTP API v1 on the wire, shared by the client backends and the server (sans-I/O).

Both sides build and read requests here, so they cannot drift apart. Values travel as JSON
inside the body; the client splices the value text it already encoded instead of encoding twice.
"""

from __future__ import annotations

from ._codec import dumps
from ._errors import InvalidArgument
from ._names import check_key
from ._types import Changes, Entry, KeyInfo, KeyPage, Limits, Op, Policy, Usage

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "MAX_WAIT",
    "batch_body",
    "changes_from_wire",
    "changes_path",
    "changes_to_wire",
    "entry_from_wire",
    "entry_to_wire",
    "key_path",
    "keys_path",
    "namespace_path",
    "op_from_wire",
    "page_from_wire",
    "page_to_wire",
    "policy_from_wire",
    "quote_key",
    "single_request",
    "usage_from_wire",
    "usage_to_wire",
]

API = "/v1/namespaces/"
#: The longest ``wait=`` (seconds) of ``GET .../changes`` the server takes; a client that waits
#: longer (``watch(timeout=4000)``, ``inf``) polls again, each poll asking at most this.
MAX_WAIT = 3600.0


# RFC 3986 unreserved characters. Not urllib.parse.quote: importing urllib.parse costs a cold
# start ms (it imports ipaddress...), and this is all the client needs of it.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_ESCAPES = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))


def quote(text: str) -> str:
    """``urllib.parse.quote(text, safe="")``: percent-encode every UTF-8 byte outside the
    unreserved set."""
    return "".join([_ESCAPES[b] for b in text.encode("utf-8")])


def quote_key(key: str) -> str:
    """Percent-encode every byte outside the unreserved set; ``.``/``..`` become ``%2E``."""
    if key in (".", ".."):
        return "%2E" * len(key)
    return quote(key)


def namespace_path(ns: str) -> str:
    return API + ns  # namespaces hold only unreserved characters plus ':' and '@'


def key_path(ns: str, key: str) -> str:
    return f"{API}{ns}/keys/{quote_key(key)}"


def keys_path(ns: str, prefix: str, cursor: str | None, limit: int) -> str:
    query: dict[str, Any] = {"limit": limit}
    if prefix:
        query["prefix"] = prefix
    if cursor:
        query["cursor"] = cursor
    return f"{API}{ns}/keys?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items())


def changes_path(ns: str, prefix: str, after: int | None, limit: int, wait: float) -> str:
    """``GET /v1/namespaces/{ns}/changes``'s path and query."""
    query: dict[str, Any] = {"limit": limit}
    if prefix:
        query["prefix"] = prefix
    if after is not None:
        query["after"] = after
    if wait > 0:
        query["wait"] = f"{min(wait, MAX_WAIT):.3f}"  # never inf, never past the server's bound
    return f"{API}{ns}/changes?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items())


def _num(value: float | None) -> str:
    return "null" if value is None else repr(value)


def op_to_wire(op: Op) -> str:
    """One op as JSON text (the value/items are already JSON text)."""
    parts = [f'"op":"{op.kind}"', '"key":' + dumps(op.key)]
    if op.kind == "set":
        parts.append('"value":' + (op.value or "null"))
        if op.if_absent:
            parts.append('"if_absent":true')
    elif op.kind == "append":
        parts.append('"items":[' + ",".join(op.items) + "]")
        if op.max_len is not None:
            parts.append(f'"max_len":{op.max_len}')
    elif op.kind == "incr":
        parts.append('"by":' + dumps(op.by))
    elif op.kind == "check":
        parts.append('"version":' + _num(op.version))
    elif op.kind == "get" and op.tail is not None:
        parts.append(f'"tail":{op.tail}')
    if op.ttl is not None:
        parts.append('"ttl":' + repr(op.ttl))
    if op.if_version is not None:
        parts.append(f'"if_version":{op.if_version}')
    return "{" + ",".join(parts) + "}"


def batch_body(ops: Sequence[Op], atomic: bool) -> bytes:
    text = '{"atomic":' + ("true" if atomic else "false") + ',"ops":['
    text += ",".join(op_to_wire(op) for op in ops) + "]}"
    return text.encode("utf-8")


def single_request(ns: str, op: Op) -> tuple[str, str, dict[str, str], bytes | None] | None:
    """(method, path, headers, body) for an op the client sends on a route of its own, else
    ``None`` (then it goes through the batch route).

    Conditional writes go through the batch route, which carries an ``Idempotency-Key``: a
    retried ``If-Match`` PUT whose first attempt succeeded would otherwise fail its own check.
    """
    if op.if_version is not None or op.if_absent:
        return None
    path = key_path(ns, op.key)
    headers: dict[str, str] = {}
    if op.kind == "set":
        body = '{"value":' + (op.value or "null")
        if op.ttl is not None:
            body += ',"ttl":' + repr(op.ttl)
        return "PUT", path, headers, (body + "}").encode("utf-8")
    if op.kind == "delete":
        return "DELETE", path, headers, None
    if op.kind == "append":
        body = '{"append":[' + ",".join(op.items) + "]"
        if op.max_len is not None:
            body += f',"max_len":{op.max_len}'
        if op.ttl is not None:
            body += ',"ttl":' + repr(op.ttl)
        return "PATCH", path, headers, (body + "}").encode("utf-8")
    if op.kind == "incr":
        return "PATCH", path, headers, ('{"incr":' + dumps(op.by) + "}").encode("utf-8")
    if op.kind == "pop":
        return "PATCH", path, headers, b'{"pop":true}'
    return None


def _bad(ns: str, what: str) -> InvalidArgument:
    return InvalidArgument(
        f"botwire: malformed batch op in namespace {ns!r}: {what}.", namespace=ns
    )


def _opt_number(ns: str, d: dict[str, Any], name: str) -> Any:
    value = d.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise _bad(ns, f"{name!r} must be a number, got {type(value).__name__}")
    return value


def _opt_int(ns: str, d: dict[str, Any], name: str) -> int | None:
    value = d.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _bad(ns, f"{name!r} must be an integer, got {type(value).__name__}")
    if value is not None and not -(2**63) <= value < 2**63:
        # SQLite and PostgreSQL hold 64-bit integers; a larger one would fail in the driver.
        raise _bad(ns, f"{name!r} is out of range (a 64-bit integer)")
    return value


#: The fields of each kind of batch op besides "op" and "key" (the server's OpenAPI schema).
OP_FIELDS = {
    "get": ("tail",),
    "set": ("value", "ttl", "if_version", "if_absent"),
    "delete": ("if_version",),
    "append": ("items", "max_len", "ttl", "if_version"),
    "incr": ("by", "if_version"),
    "pop": ("if_version",),
    "check": ("version",),
}


def op_from_wire(ns: str, d: Any) -> Op:
    """Parse one batch op sent by a client (server side); values are re-encoded strictly. A
    field the op does not take is refused, not ignored: ``{"op": "check", "if_version": 7}``
    (a check's field is ``version``) would otherwise check that the key is absent."""
    if not isinstance(d, dict):
        raise _bad(ns, "each op must be an object")
    kind = d.get("op")
    if kind not in OP_FIELDS:
        raise _bad(ns, f"'op' must be get, set, delete, append, incr, pop or check, not {kind!r}")
    key = check_key(d.get("key"), ns)
    unknown = sorted(set(d) - {"op", "key", *OP_FIELDS[kind]})
    if unknown:
        hint = ""
        if kind == "check" and "if_version" in unknown:
            hint = " (a check's expected version is 'version'; null: the key must be absent)"
        elif "version" in unknown:
            hint = " (a condition on the key's version is 'if_version')"
        takes = ", ".join(repr(f) for f in OP_FIELDS[kind])
        what = f"{kind} of key {key!r} has unknown field(s) {unknown}; a {kind} takes {takes}"
        raise _bad(ns, what + hint)
    common = {
        "ttl": _opt_number(ns, d, "ttl"),
        "if_version": _opt_int(ns, d, "if_version"),
    }
    if kind == "set":
        if "value" not in d:
            raise _bad(ns, f"set of key {key!r} has no 'value'")
        return Op(
            "set", key, value=dumps(d["value"]), if_absent=d.get("if_absent") is True, **common
        )
    if kind == "append":
        items = d.get("items")
        if not isinstance(items, list):
            raise _bad(ns, f"append to key {key!r} needs 'items', a list")
        return Op(
            "append",
            key,
            items=tuple(dumps(i) for i in items),
            max_len=_opt_int(ns, d, "max_len"),
            **common,
        )
    if kind == "incr":
        by = _opt_number(ns, d, "by")
        return Op("incr", key, by=1 if by is None else by, **common)
    if kind == "check":
        return Op("check", key, version=_opt_int(ns, d, "version"))
    if kind == "get":
        return Op("get", key, tail=_opt_int(ns, d, "tail"))
    return Op(kind, key, **common)


def entry_to_wire(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "expires_at": entry.expires_at,
    }


def entry_from_wire(d: dict[str, Any]) -> Entry:
    return Entry(
        d["key"], d["value"], d["version"], d["created_at"], d["updated_at"], d.get("expires_at")
    )


def changes_to_wire(changes: Changes) -> dict[str, Any]:
    """``GET /v1/namespaces/{ns}/changes``'s answer: entries with ``deleted``."""
    return {
        "changes": [{**entry_to_wire(e), "deleted": e.deleted} for e in changes.entries],
        "version": changes.version,
        "more": changes.more,
    }


def changes_from_wire(d: dict[str, Any]) -> Changes:
    entries = [
        Entry(
            c["key"],
            c["value"],
            c["version"],
            c["created_at"],
            c["updated_at"],
            c.get("expires_at"),
            bool(c.get("deleted", False)),
        )
        for c in d["changes"]
    ]
    return Changes(entries, int(d["version"]), bool(d.get("more", False)))


def page_to_wire(page: KeyPage) -> dict[str, Any]:
    return {
        "keys": [
            {
                "key": k.key,
                "version": k.version,
                "bytes": k.bytes,
                "updated_at": k.updated_at,
                "expires_at": k.expires_at,
            }
            for k in page.keys
        ],
        "cursor": page.cursor,
    }


def page_from_wire(d: dict[str, Any]) -> KeyPage:
    return KeyPage(
        [
            KeyInfo(k["key"], k["version"], k["bytes"], k["updated_at"], k.get("expires_at"))
            for k in d["keys"]
        ],
        d.get("cursor"),
    )


def usage_to_wire(u: Usage) -> dict[str, Any]:
    return {
        "namespace": u.namespace,
        "keys": u.keys,
        "bytes": u.bytes,
        "writes_today": u.writes_today,
        "resets_at": u.resets_at,
        "limits": u.limits.as_dict(),
        "policy": u.policy.as_dict(),
    }


def usage_from_wire(d: dict[str, Any]) -> Usage:
    return Usage(
        d["namespace"],
        d["keys"],
        d["bytes"],
        d["writes_today"],
        d["resets_at"],
        Limits(**d.get("limits", {})),
        policy_from_wire(d.get("policy") or {}),
    )


def policy_from_wire(d: dict[str, Any]) -> Policy:
    """A :class:`Policy` from its JSON (``Policy.as_dict``); an older server sends none."""
    return Policy(
        d.get("default_ttl"),
        d.get("max_list_len"),
        d.get("max_idle"),
        tuple(d.get("overrides") or ()),
    )
