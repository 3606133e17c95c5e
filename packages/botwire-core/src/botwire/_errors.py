"""The one exception tree of botwire, shared by the client, the stores and the server.

Every error carries a stable ``code`` and HTTP ``status`` so that the server can send it and the
HTTP client can raise the very same class again (see :func:`error_from_payload`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BotWireError",
    "ClaimExpired",
    "Closed",
    "Compacted",
    "Conflict",
    "Forbidden",
    "InvalidArgument",
    "InvalidKey",
    "InvalidNamespace",
    "KeyRewritten",
    "LeaseLost",
    "Misrouted",
    "NotSerializable",
    "QuotaExceeded",
    "StorageFull",
    "TLSError",
    "TypeMismatch",
    "Unauthorized",
    "Unavailable",
    "ValueTooLarge",
    "error_from_payload",
]


class BotWireError(Exception):
    """Base class of every error botwire raises.

    Attributes ``namespace`` and ``key`` name what the failed operation touched (``None`` where it
    does not apply); ``details`` holds the machine-readable extras sent over HTTP.

    Example::

        try:
            memory.set("k", 1, if_version=7)
        except botwire.BotWireError as exc:
            print(exc.code, exc.namespace, exc.key, exc)
    """

    code = "error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        namespace: str | None = None,
        key: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.namespace = namespace
        self.key = key
        self.details = details

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the server sends for this error (``{"error": {...}}``)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.namespace is not None:
            body["namespace"] = self.namespace
        if self.key is not None:
            body["key"] = self.key
        body.update(self.details)
        return {"error": body}


class InvalidNamespace(BotWireError, ValueError):
    """The namespace breaks the naming rule (1–128 of ``A-Za-z0-9._-:@``, not ``.``/``..``)."""

    code = "invalid_namespace"
    status = 400


class InvalidKey(BotWireError, ValueError):
    """The key is empty, longer than 1024 UTF-8 bytes, contains NUL or is not valid UTF-8."""

    code = "invalid_key"
    status = 400


class InvalidArgument(BotWireError, ValueError):
    """Any other malformed argument or request (a negative ``ttl``, a bad cursor, bad JSON...)."""

    code = "invalid_argument"
    status = 400


class NotSerializable(BotWireError, TypeError):
    """The value is not JSON (NaN, Infinity, a set, a datetime, an arbitrary object...)."""

    code = "not_serializable"
    status = 400


class Conflict(BotWireError):
    """A version check failed. ``current_version`` is the entry's version (``None``: absent)."""

    code = "conflict"
    status = 412

    @property
    def current_version(self) -> int | None:
        return self.details.get("current_version")


class LeaseLost(Conflict):
    """A lease is no longer held by this holder: it expired, another holder acquired it, or it
    was never acquired. Raised by ``lease.renew()`` and by a write fenced on the lease
    (``fence=lease``, ``atomic().check_lease(lease)``), which then wrote nothing.

    ``details`` name the ``lease`` and the ``token`` this holder had (``None``: never held).
    """

    code = "lease_lost"
    status = 412


class ClaimExpired(Conflict):
    """A queue's ``ack``/``nack`` came too late: the claim expired and another consumer claimed
    the item again (or it left the queue), so the item may be processed twice."""

    code = "claim_expired"


class TypeMismatch(BotWireError):
    """``append``/``tail``/``pop`` on a value that is not a list, or ``incr`` on a non-number."""

    code = "type_mismatch"
    status = 409


class ValueTooLarge(BotWireError):
    """A value (or a list item) exceeds the configured maximum size."""

    code = "value_too_large"
    status = 413


class QuotaExceeded(BotWireError):
    """A namespace quota is used up. ``retry_after`` is seconds until it resets (or ``None``)."""

    code = "quota_exceeded"
    status = 429

    @property
    def retry_after(self) -> float | None:
        return self.details.get("retry_after")


class Unauthorized(BotWireError):
    """No token, or a token that is invalid, tampered with or expired (HTTP 401)."""

    code = "unauthorized"
    status = 401


class Forbidden(BotWireError):
    """A valid token whose scope does not cover this namespace or operation (HTTP 403)."""

    code = "forbidden"
    status = 403


class Unavailable(BotWireError):
    """The backend could not be reached, or kept failing, within the retries and deadline.

    The last underlying exception is kept as ``__cause__``.
    """

    code = "unavailable"
    status = 503


class StorageFull(BotWireError):
    """The disk holding the store is full (HTTP 507 ``storage_full``): writes are refused
    until space is freed; reads, deletes and ``clear`` keep working. Never retried: waiting a
    second does not free a disk. Writes resume by themselves once there is room again.
    """

    code = "storage_full"
    status = 507


class Misrouted(BotWireError):
    """The URL did not reach botwire's API: another route, another server, an HTML page or a
    redirect answered. Never retried, never read as "no such key": check ``BOTWIRE_URL``.

    ``details`` holds ``url`` (what was called), ``status`` and, for a redirect, ``location``.
    """

    code = "misrouted"
    status = 502


class KeyRewritten(Misrouted):
    """Something between the client and the server (a reverse proxy that decodes and normalises
    paths, e.g. nginx ``proxy_pass http://up/;`` with a URI part) changed the key in the URL.
    The server refuses such a request before touching storage (HTTP 400); never retried."""

    code = "key_rewritten"
    status = 400


class Closed(BotWireError):
    """The ``Memory`` / ``AsyncMemory`` was closed (``close()``, or its ``with`` block ended);
    open a new one. Nothing stored is affected."""

    code = "closed"
    status = 400


class Compacted(BotWireError):
    """A watch's resume point (``after``) is older than the server's tombstone retention
    window: deletions since then may have been forgotten. Re-read what you watch
    (``watch(key)`` / ``watch_prefix(prefix)`` with ``after=None``) and resume from the
    version it returns. ``details["compacted"]`` is the oldest resumable version."""

    code = "compacted"
    status = 410


class TLSError(Unavailable):
    """The TLS handshake failed: the server's certificate is not trusted or names another host.

    Never retried (retrying cannot fix it); the message says how to fix it (``SSL_CERT_FILE``).
    """

    code = "tls_error"
    status = 503


_BY_CODE: dict[str, type[BotWireError]] = {
    cls.code: cls
    for cls in (
        InvalidNamespace,
        InvalidKey,
        InvalidArgument,
        NotSerializable,
        Conflict,
        LeaseLost,
        ClaimExpired,
        TypeMismatch,
        ValueTooLarge,
        QuotaExceeded,
        Unauthorized,
        Forbidden,
        Unavailable,
        StorageFull,
        Misrouted,
        KeyRewritten,
        Closed,
        Compacted,
        TLSError,
    )
}
_BY_STATUS: dict[int, type[BotWireError]] = {
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    409: TypeMismatch,
    412: Conflict,
    410: Compacted,
    413: ValueTooLarge,
    429: QuotaExceeded,
    507: StorageFull,
}


def error_from_payload(status: int, payload: Any) -> BotWireError:
    """Rebuild the exception a server sent (``{"error": {"code", "message", ...}}``)."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        cls = _BY_STATUS.get(status, Unavailable if status >= 500 else BotWireError)
        return cls(f"botwire server answered HTTP {status}: {str(payload)[:300]}")
    body = dict(body)
    code = str(body.pop("code", ""))
    message = str(body.pop("message", f"HTTP {status}"))
    namespace = body.pop("namespace", None)
    key = body.pop("key", None)
    cls = (
        _BY_CODE.get(code)
        or _BY_STATUS.get(status)
        or (Unavailable if status >= 500 else BotWireError)
    )
    return cls(message, namespace=namespace, key=key, **body)
