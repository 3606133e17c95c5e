"""What the sync and async HTTP backends share: the target, headers, which Store call becomes
which request, how a response becomes a result, and when to retry (sans-I/O)."""

from __future__ import annotations

import os

from .. import _wire
from .._codec import decode
from .._errors import BotWireError, InvalidArgument, QuotaExceeded, error_from_payload
from .._record import record
from .._types import Op

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "MAX_RETRY_AFTER",
    "Call",
    "Target",
    "backoff",
    "batch_call",
    "clear_call",
    "get_call",
    "list_call",
    "retryable_status",
    "usage_call",
]

MAX_RETRY_AFTER = 5.0  # a 429/503 asking to wait longer than this is reported, not waited out
RETRY_STATUSES = frozenset((502, 503, 504))


@record
class Target:
    """Where the server is: scheme, host, port and an optional path prefix."""

    tls: bool
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Target:
        # Not urllib.parse.urlsplit: importing urllib.parse costs a cold start ms.
        bad = InvalidArgument(f"botwire: server URL {url!r} is not http(s)://host[:port][/prefix].")
        scheme, sep, rest = url.strip().partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ("http", "https"):
            raise bad
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        netloc, path = rest[:end], rest[end:]
        path = path.split("?", 1)[0].split("#", 1)[0]
        hostport = netloc.rpartition("@")[2]
        if hostport.startswith("["):  # [IPv6]:port
            host, bracket, tail = hostport[1:].partition("]")
            if not bracket or (tail and not tail.startswith(":")):
                raise bad
            port_text = tail[1:]
        else:
            host, _, port_text = hostport.partition(":")
        if not host:
            raise bad
        tls = scheme == "https"
        port = 443 if tls else 80
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
                raise bad
            port = int(port_text)
        return cls(tls, host.lower(), port, path.rstrip("/"))

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def base_headers(target: Target, token: str | None) -> dict[str, str]:
    headers = {
        "Host": target.host_header,
        "Accept": "application/json",
        "User-Agent": "botwire-core/0.3.0",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def new_idempotency_key() -> str:
    return os.urandom(16).hex()


@record(frozen=False)
class Call:
    """One logical request (retried as a whole) and how to read its answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    kind: str  # get | single | batch | list | clear | usage
    op: Op | None = None
    namespace: str = ""
    key: str | None = None

    def result(self, status: int, body: bytes) -> Any:
        """The Store-protocol value for a final response, or raise the mapped error."""
        payload: Any = None
        if body:
            try:
                payload = decode(body.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError included
                payload = body[:300].decode("utf-8", "replace")
        if self.kind == "get" and status == 404:
            return None
        if status >= 400:
            raise self._error(status, payload)
        if not isinstance(payload, dict):
            raise error_from_payload(502, f"unexpected response body: {payload!r}")
        if self.kind == "get":
            return _wire.entry_from_wire(payload)
        if self.kind == "single":
            return [payload]
        if self.kind == "batch":
            return payload["results"]
        if self.kind == "list":
            return _wire.page_from_wire(payload)
        if self.kind == "clear":
            return payload["deleted"]
        return _wire.usage_from_wire(payload)

    def _error(self, status: int, payload: Any) -> BotWireError:
        error = error_from_payload(status, payload)
        if error.namespace is None:
            error.namespace = self.namespace or None
        if error.key is None:
            error.key = self.key
        return error


def get_call(target: Target, headers: dict[str, str], ns: str, key: str, tail: int | None) -> Call:
    path = _wire.key_path(ns, key) + ("" if tail is None else f"?tail={tail}")
    return Call("GET", target.prefix + path, headers, None, "get", namespace=ns, key=key)


def batch_call(
    target: Target,
    headers: dict[str, str],
    ns: str,
    ops: Sequence[Op],
    atomic: bool,
    idempotency_key: str | None,
) -> Call:
    headers = {**headers, "Content-Type": "application/json"}
    if len(ops) == 1 and (single := _wire.single_request(ns, ops[0])) is not None:
        method, path, extra, body = single
        headers.update(extra)
        if method == "PATCH":
            headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        return Call(method, target.prefix + path, headers, body, "single", ops[0], ns, ops[0].key)
    if any(op.mutates for op in ops):
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
    body = _wire.batch_body(ops, atomic)
    key = ops[0].key if len(ops) == 1 else None
    path = target.prefix + _wire.namespace_path(ns) + "/batch"
    return Call("POST", path, headers, body, "batch", namespace=ns, key=key)


def list_call(
    target: Target, headers: dict[str, str], ns: str, prefix: str, cursor: str | None, limit: int
) -> Call:
    path = target.prefix + _wire.keys_path(ns, prefix, cursor, limit)
    return Call("GET", path, headers, None, "list", namespace=ns)


def clear_call(target: Target, headers: dict[str, str], ns: str) -> Call:
    return Call(
        "DELETE", target.prefix + _wire.namespace_path(ns), headers, None, "clear", namespace=ns
    )


def usage_call(target: Target, headers: dict[str, str], ns: str) -> Call:
    return Call(
        "GET", target.prefix + _wire.namespace_path(ns), headers, None, "usage", namespace=ns
    )


def retry_delay(status: int, headers: dict[str, str]) -> float | None:
    """Seconds to wait before retrying a response, or ``None`` when it is final."""
    if status not in RETRY_STATUSES and status != 429:
        return None
    raw = headers.get("retry-after")
    if raw is None:
        return 0.0 if status != 429 else None  # a 429 without Retry-After is a quota: final
    try:
        wait = float(raw)
    except ValueError:
        return None
    return wait if wait <= MAX_RETRY_AFTER else None


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES or status == 429


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 50 ms, 100 ms, 200 ms ... capped at 2 s."""
    import random  # only when retrying: it costs a cold start ms

    return random.uniform(0, min(2.0, 0.05 * (2**attempt)))


def quota_from(status: int, headers: dict[str, str], body: bytes, call: Call) -> BotWireError:
    """The error for a response that stays an error after retrying."""
    try:
        payload = decode(body.decode("utf-8")) if body else None
    except ValueError:
        payload = None
    error = call._error(status, payload)
    if isinstance(error, QuotaExceeded) and error.retry_after is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:  # noqa: SIM105 -- contextlib costs a cold start ~4 ms of imports
                error.details["retry_after"] = float(raw)
            except ValueError:
                pass
    return error
