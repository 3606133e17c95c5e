"""Route table with the OpenAPI description of every status each route can answer."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.convertors import PathConvertor, register_url_convertor

from . import _changes, _compat, _keys, _namespaces, _ops
from ._hot import KEY_ROUTE, NOOP_FAST
from ._schemas import (
    BATCH_BODY,
    PATCH_BODY,
    POLICY_BODY,
    PUT_BODY,
    AppendOut,
    BatchOut,
    ChangesOut,
    ClearedOut,
    CompatDeleted,
    CompatEntry,
    CompatList,
    CompatStored,
    DeletedOut,
    EntryOut,
    ErrorOut,
    HealthOut,
    KeyPageOut,
    PolicyOut,
    UsageOut,
    VersionOut,
    errors,
    header_param,
    key_param,
    ns_param,
    query_param,
)

__all__ = ["install_routes"]


class _AnyKeyConvertor(PathConvertor):
    """Like ``path``, but also across newlines (Starlette's ``.*`` stops at ``\n``).

    Routing only needs a match; the key itself is decoded from the raw path.
    """

    regex = "(?s:.*)"


register_url_convertor("anykey", _AnyKeyConvertor())

_ETAG = {
    "ETag": {
        "description": 'the entry\'s version, quoted: "<version>"',
        "schema": {"type": "string"},
    }
}
_IF_MATCH = header_param("If-Match", 'apply only if the version is this one: "<version>"')
_IDEMPOTENCY = header_param(
    "Idempotency-Key",
    "a retry with the same key returns the first result (kept 24 h, only"
    " for requests that change something; counted in the namespace's bytes; dropped with the"
    " key or namespace whose values it holds)",
)
_KEY_ECHO = header_param(
    "X-BotWire-Key",
    "the key as the client meant it (percent-encoded UTF-8): a path that"
    " arrives with another key (a proxy rewrote it) is refused with 400 key_rewritten",
)


def _ok(
    model: type, description: str, headers: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    entry: dict[str, Any] = {"model": model, "description": description}
    if headers:
        entry["headers"] = headers
    return {200: entry}


def _extra(*params: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": list(params)}
    if body is not None:
        extra["requestBody"] = body
    return extra


def install_routes(app: FastAPI, *, testing_clock: bool) -> None:
    add = app.add_api_route
    key = KEY_ROUTE
    tags: list[str | Enum] = ["keys"]  # FastAPI's type (list is invariant)
    add(
        key,
        _keys.get_key,
        methods=["GET"],
        tags=tags,
        summary="Read a key",
        responses={
            **_ok(EntryOut, "the entry", _ETAG),
            304: {"description": "If-None-Match matched the current version", "headers": _ETAG},
            **errors(404, 409, 413),
        },
        openapi_extra=_extra(
            ns_param(),
            key_param(),
            _KEY_ECHO,
            query_param(
                "tail",
                {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                "for a list value: return only its last N items",
            ),
            header_param("If-None-Match", '"<version>" (or *): 304 when it matches'),
        ),
    )
    add(
        key,
        _keys.put_key,
        methods=["PUT"],
        tags=tags,
        summary="Set a key",
        responses={**_ok(VersionOut, "the new version", _ETAG), **errors(412, 413, 415, 429)},
        openapi_extra=_extra(
            ns_param(),
            key_param(),
            _KEY_ECHO,
            _IF_MATCH,
            header_param("If-None-Match", "* : create only if the key is absent"),
            body=PUT_BODY,
        ),
    )
    add(
        key,
        _keys.patch_key,
        methods=["PATCH"],
        tags=tags,
        summary="Append to a list, increment a number or pop a list's last item",
        responses={
            **_ok(
                AppendOut,
                "append: version, length; incr: version, value; pop: found, value, version",
            ),
            **errors(409, 412, 413, 415, 429),
        },
        openapi_extra=_extra(
            ns_param(), key_param(), _KEY_ECHO, _IF_MATCH, _IDEMPOTENCY, body=PATCH_BODY
        ),
    )
    add(
        key,
        _keys.delete_key,
        methods=["DELETE"],
        tags=tags,
        summary="Delete a key",
        responses={**_ok(DeletedOut, "whether the key existed"), **errors(412)},
        openapi_extra=_extra(ns_param(), key_param(), _KEY_ECHO, _IF_MATCH, _IDEMPOTENCY),
    )

    ns_path = "/v1/namespaces/{ns}"
    tags = ["namespaces"]
    add(
        ns_path + "/keys",
        _namespaces.list_keys,
        methods=["GET"],
        tags=tags,
        summary="List keys (UTF-8 byte order, paged)",
        responses={**_ok(KeyPageOut, "one page; cursor is null on the last"), **errors()},
        openapi_extra=_extra(
            ns_param(),
            query_param("prefix", {"type": "string"}, "only keys starting with this"),
            query_param("cursor", {"type": "string"}, "the cursor of the previous page"),
            query_param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "keys per page (default 1000)",
            ),
        ),
    )
    add(
        ns_path + "/batch",
        _namespaces.batch,
        methods=["POST"],
        tags=tags,
        summary="Apply several operations (atomic: all or nothing)",
        responses={**_ok(BatchOut, "one result per op"), **errors(409, 412, 413, 415, 429)},
        openapi_extra=_extra(ns_param(), _IDEMPOTENCY, body=BATCH_BODY),
    )
    add(
        ns_path + "/changes",
        _changes.get_changes,
        methods=["GET"],
        tags=tags,
        summary="Changes since a version (watch; long-poll with wait)",
        responses={
            **_ok(
                ChangesOut,
                "the latest state of each key changed after `after` (tombstones: deleted=true),"
                " ascending version; `version` is the next `after`; `more`: call again at once",
            ),
            410: {
                "model": ErrorOut,
                "description": "compacted: `after` is older than the tombstone retention;"
                " re-read without `after`",
            },
            **errors(),
            429: {
                "model": ErrorOut,
                "description": "too many waiting watches on the server or the namespace"
                " (--max-watchers, --max-watchers-per-namespace)",
                "headers": {
                    "Retry-After": {"description": "seconds: 1", "schema": {"type": "string"}}
                },
            },
        },
        openapi_extra=_extra(
            ns_param(),
            query_param("prefix", {"type": "string"}, "only keys starting with this"),
            query_param(
                "after",
                {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                "a version: changes after it (tombstones included); absent: the live entries"
                " at once, no wait",
            ),
            query_param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "keys per answer (default 1000; one version's keys always come together)",
            ),
            query_param(
                "wait",
                {"type": "number", "minimum": 0, "maximum": 3600},
                "seconds to hold the request until a change (capped by the server's"
                " --watch-hold, default 20); 429 when too many wait",
            ),
        ),
    )
    add(
        ns_path,
        _namespaces.get_usage,
        methods=["GET"],
        tags=tags,
        summary="Namespace usage",
        responses={**_ok(UsageOut, "keys, bytes, writes today and limits"), **errors()},
        openapi_extra=_extra(ns_param()),
    )
    add(
        ns_path + "/policy",
        _namespaces.get_policy,
        methods=["GET"],
        tags=tags,
        summary="Retention policy in force",
        responses={**_ok(PolicyOut, "the policy; null fields: no such rule"), **errors()},
        openapi_extra=_extra(ns_param()),
    )
    add(
        ns_path + "/policy",
        _namespaces.set_policy,
        methods=["PUT"],
        tags=tags,
        summary="Change the retention policy (admin tokens only)",
        responses={**_ok(PolicyOut, "the policy now in force"), **errors(413, 415)},
        openapi_extra=_extra(ns_param(), body=POLICY_BODY),
    )
    add(
        ns_path,
        _namespaces.clear_namespace,
        methods=["DELETE"],
        tags=tags,
        summary="Delete every key of the namespace",
        responses={**_ok(ClearedOut, "how many keys were deleted"), **errors()},
        openapi_extra=_extra(ns_param()),
    )

    tags = ["compatibility"]
    compat_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {"value": {"type": "string"}},
                }
            }
        },
    }
    ckey = "/memory/{ns}/{key:anykey}"
    add(
        ckey,
        _compat.compat_put,
        methods=["PUT"],
        tags=tags,
        summary="Store a string (original hosted API)",
        responses={**_ok(CompatStored, "stored"), **errors(413, 415, 429)},
        openapi_extra=_extra(ns_param(), key_param(), body=compat_body),
    )
    add(
        ckey,
        _compat.compat_get,
        methods=["GET"],
        tags=tags,
        summary="Read a string (original hosted API)",
        responses={**_ok(CompatEntry, "the value"), **errors(404)},
        openapi_extra=_extra(ns_param(), key_param()),
    )
    add(
        ckey,
        _compat.compat_delete,
        methods=["DELETE"],
        tags=tags,
        summary="Delete a key (original hosted API; 404 when absent)",
        responses={**_ok(CompatDeleted, "deleted"), **errors(404)},
        openapi_extra=_extra(ns_param(), key_param()),
    )
    add(
        "/memory/{ns}",
        _compat.compat_list,
        methods=["GET"],
        tags=tags,
        summary="Most recently updated keys (original hosted API)",
        responses={**_ok(CompatList, "newest first"), **errors()},
        openapi_extra=_extra(
            ns_param(),
            query_param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "how many keys (default 100)",
            ),
        ),
    )

    tags = ["operations"]
    add(
        "/healthz",
        _ops.healthz,
        methods=["GET"],
        tags=tags,
        summary="Liveness",
        responses=_ok(HealthOut, "alive"),
    )
    add(
        "/readyz",
        _ops.readyz,
        methods=["GET"],
        tags=tags,
        summary="Readiness (store reachable)",
        responses={
            **_ok(HealthOut, "the store answers"),
            503: {"model": ErrorOut, "description": "the store is unreachable"},
        },
    )
    add(
        "/metrics",
        _ops.metrics,
        methods=["GET"],
        tags=tags,
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    add("/_noop", _ops.noop, methods=["GET"], include_in_schema=False)
    # the same, served as the key routes are (api/_hot.py): the floor of the fast path
    add(NOOP_FAST, _ops.noop, methods=["GET"], include_in_schema=False)
    if testing_clock:
        add("/_testing/clock", _ops.testing_clock, methods=["POST"], include_in_schema=False)
