"""OpenAPI descriptions of every body the API reads and writes (bodies are parsed by hand, so
these models document the wire format of :mod:`botwire._wire`; they do not validate requests)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BATCH_BODY",
    "PATCH_BODY",
    "POLICY_BODY",
    "PUT_BODY",
    "AppendOut",
    "BatchOut",
    "ClearedOut",
    "CompatDeleted",
    "CompatEntry",
    "CompatList",
    "CompatStored",
    "DeletedOut",
    "EntryOut",
    "ErrorOut",
    "HealthOut",
    "KeyPageOut",
    "PolicyOut",
    "UsageOut",
    "VersionOut",
    "errors",
    "header_param",
    "key_param",
    "ns_param",
    "query_param",
]


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str = Field(description="stable machine-readable code, e.g. quota_exceeded")
    message: str
    namespace: str | None = None
    key: str | None = None


class ErrorOut(BaseModel):
    """Every error: ``{"error": {"code", "message", "namespace"?, "key"?, ...details}}``."""

    model_config = ConfigDict(extra="allow")
    error: _ErrorDetail


class EntryOut(BaseModel):
    key: str
    value: Any = Field(description="any JSON value, exactly as stored")
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None


class ChangeOut(EntryOut):
    deleted: bool = Field(description="a tombstone: the key was deleted at `version` (value null)")


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    version: int = Field(description="the resume point: pass it as `after` next time")
    more: bool = Field(description="the limit was hit: call again at once with `after=version`")


class VersionOut(BaseModel):
    version: int


class AppendOut(BaseModel):
    """``append`` → version, length; ``incr`` → version, value; ``pop`` → found, value, version."""

    version: int | None = None
    length: int | None = None
    value: Any = None
    found: bool | None = None


class DeletedOut(BaseModel):
    deleted: bool


class _KeyInfo(BaseModel):
    key: str
    version: int
    bytes: int
    updated_at: float
    expires_at: float | None


class KeyPageOut(BaseModel):
    keys: list[_KeyInfo]
    cursor: str | None


class BatchOut(BaseModel):
    """One result per op, in order (see the Store protocol); with ``atomic: false`` a failed op
    yields ``{"error": {...}}``."""

    results: list[dict[str, Any]]


class _Limits(BaseModel):
    max_value_bytes: int
    max_namespace_bytes: int
    max_keys: int
    writes_per_day: int


class _Policy(BaseModel):
    """The retention policy in force (null: no such rule); ``overrides``: the fields the
    namespace sets itself, the others follow the server's defaults."""

    default_ttl: float | None
    max_list_len: int | None
    max_idle: float | None
    overrides: list[str]


class UsageOut(BaseModel):
    namespace: str
    keys: int
    bytes: int
    writes_today: int
    resets_at: float
    limits: _Limits
    policy: _Policy


class PolicyOut(BaseModel):
    namespace: str
    policy: _Policy


class ClearedOut(BaseModel):
    deleted: int


class HealthOut(BaseModel):
    status: str


class CompatStored(BaseModel):
    namespace: str
    key: str
    stored: bool
    bytes: int


class CompatEntry(BaseModel):
    namespace: str
    key: str
    value: str
    created_at: float
    updated_at: float


class CompatDeleted(BaseModel):
    deleted: bool
    namespace: str
    key: str


class _CompatKey(BaseModel):
    key: str
    bytes: int
    updated_at: float


class CompatList(BaseModel):
    namespace: str
    count: int
    keys: list[_CompatKey]


_DESCRIPTIONS = {
    400: "malformed request: bad namespace, key, JSON or argument",
    401: "missing, invalid or expired token",
    403: "forbidden: the token does not cover this namespace, is read-only, or is not an admin"
    " token where one is needed (forbidden); the"
    " request's Origin is not one of --cors-origin (origin_not_allowed); or its Host is"
    " not a name the server answers to, --allowed-host (host_not_allowed)",
    404: "no such key",
    409: "the operation needs another type (a list, a number)",
    412: "a version condition failed; details carry current_version",
    413: "too large, refused before the work: the value or the request body (details name"
    " the limit), or a budget of this server: max_response_bytes (the answer would be"
    " larger), max_json_elements, max_append_items, max_list_length, max_list_bytes",
    415: "a request with a body whose Content-Type is not application/json"
    " (unsupported_media_type; browsers cannot send that type without CORS)",
    429: "a quota is used up; Retry-After says when writes resume",
    503: "the store is unreachable",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the given error statuses (401/403 always included)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({400, 401, 403, 503, *statuses}):
        entry: dict[str, Any] = {"model": ErrorOut, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds until writes resume (next UTC midnight)",
                    "schema": {"type": "string"},
                }
            }
        out[status] = entry
    return out


NS_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"


def ns_param() -> dict[str, Any]:
    return {
        "name": "ns",
        "in": "path",
        "required": True,
        "description": "namespace: 1-128 of A-Z a-z 0-9 . _ - : @ (not . or ..)",
        "schema": {"type": "string", "pattern": NS_PATTERN, "minLength": 1, "maxLength": 128},
    }


def key_param() -> dict[str, Any]:
    return {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "any UTF-8 string of 1-1024 bytes without NUL, percent-encoded "
        "(every byte outside the unreserved set; '.' and '..' as %2E)",
        "schema": {"type": "string", "minLength": 1},
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def header_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_TTL = {
    "type": "number",
    "exclusiveMinimum": 0,
    "exclusiveMaximum": 1e10,
    "description": "seconds until the entry expires",
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _policy_field(description: str, *, whole: bool) -> dict[str, Any]:
    return {
        "type": ["integer" if whole else "number", "null"],
        "minimum": 0,
        "maximum": 1_000_000_000 if whole else 1e10,
        "description": description + " (0: none for this namespace; null: the server's default)",
    }


POLICY_BODY = _json_body(
    {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "description": "fields left out keep their value",
        "properties": {
            "default_ttl": _policy_field("seconds a write without ttl keeps", whole=False),
            "max_list_len": _policy_field("items a list keeps after each append", whole=True),
            "max_idle": _policy_field(
                "seconds without a write before housekeeping clears the namespace", whole=False
            ),
        },
    }
)

PUT_BODY = _json_body(
    {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"description": "any JSON value"}, "ttl": _TTL},
    }
)

PATCH_BODY = _json_body(
    {
        "oneOf": [
            {
                "type": "object",
                "title": "append",
                "required": ["append"],
                "properties": {
                    "append": {"type": "array", "description": "items added at the end"},
                    "max_len": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    "ttl": _TTL,
                },
            },
            {
                "type": "object",
                "title": "incr",
                "required": ["incr"],
                "properties": {"incr": {"type": "number"}},
            },
            {
                "type": "object",
                "title": "pop",
                "required": ["pop"],
                "properties": {"pop": {"type": "boolean", "enum": [True]}},
            },
        ]
    }
)

_KEY = {"type": "string", "minLength": 1}
_INT64_MAX = 2**63 - 1
_IF_VERSION = {"type": "integer", "minimum": 0, "maximum": _INT64_MAX}


def _op(kind: str, required: list[str], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "title": kind,
        "required": ["op", "key", *required],
        "properties": {"op": {"type": "string", "enum": [kind]}, "key": _KEY, **props},
        "additionalProperties": False,  # refused, not ignored (botwire._wire.OP_FIELDS)
    }


BATCH_BODY = _json_body(
    {
        "type": "object",
        "required": ["ops"],
        "properties": {
            "atomic": {"type": "boolean", "default": True},
            "ops": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                    "oneOf": [
                        _op(
                            "get", [], tail={"type": "integer", "minimum": 0, "maximum": _INT64_MAX}
                        ),
                        _op(
                            "set",
                            ["value"],
                            value={},
                            ttl=_TTL,
                            if_version=_IF_VERSION,
                            if_absent={"type": "boolean"},
                        ),
                        _op("delete", [], if_version=_IF_VERSION),
                        _op(
                            "append",
                            ["items"],
                            items={"type": "array"},
                            max_len={"type": "integer", "minimum": 1, "maximum": _INT64_MAX},
                            ttl=_TTL,
                            if_version=_IF_VERSION,
                        ),
                        _op("incr", [], by={"type": "number"}, if_version=_IF_VERSION),
                        _op("pop", [], if_version=_IF_VERSION),
                        _op(
                            "check",
                            [],
                            version={
                                "type": ["integer", "null"],
                                "minimum": 0,
                                "maximum": _INT64_MAX,
                            },
                        ),
                    ]
                },
            },
        },
    }
)
