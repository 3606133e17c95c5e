"""Request plumbing shared by the routes: raw-path names, bounded bodies, strict JSON, headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

from botwire import BotWireError, InvalidArgument, InvalidKey, KeyRewritten, ValueTooLarge
from botwire._codec import dumps
from botwire._names import check_key, check_namespace

__all__ = [
    "MethodNotAllowed",
    "NotFound",
    "check_json_elements",
    "encode_value",
    "entry_json",
    "etag_matches",
    "header",
    "idempotency_key",
    "json_response",
    "parse_json",
    "parse_version_header",
    "query_int",
    "read_body",
    "read_json",
    "route_names",
]


class NotFound(BotWireError):
    """The key (or route) does not exist (HTTP 404)."""

    code = "not_found"
    status = 404


class MethodNotAllowed(BotWireError):
    code = "method_not_allowed"
    status = 405


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Compact strict JSON, UTF-8 (values were validated on the way in)."""
    return Response(dumps(payload).encode("utf-8"), status, headers, media_type="application/json")


def header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), read from the ASGI scope: the same
    value as ``request.headers.get``, without building a ``Headers`` object per request."""
    for k, v in request.scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


def _number(x: Any) -> str:
    # json encodes exactly these types with their repr (float.__repr__ / int.__repr__)
    if x is None:
        return "null"
    if type(x) is float or type(x) is int:
        return repr(x)
    return dumps(x)


def entry_json(
    key: str,
    value_json: str,
    version: int,
    created_at: float,
    updated_at: float,
    expires_at: float | None,
) -> bytes:
    """``json_response(entry_to_wire(entry))``'s body, byte for byte, with the value's stored
    JSON text spliced in instead of decoded and encoded again (a GET's largest cost after the
    framework's own)."""
    return (
        f'{{"key":{dumps(key)},"value":{value_json},"version":{_number(version)},'
        f'"created_at":{_number(created_at)},"updated_at":{_number(updated_at)},'
        f'"expires_at":{_number(expires_at)}}}'
    ).encode()


def _raw_path(request: Request) -> bytes:
    raw = request.scope.get("raw_path")
    if raw is None:  # not every ASGI server sends it; re-encode the decoded path
        raw = quote(request.scope["path"], safe="/").encode("ascii")
    root = request.scope.get("root_path", "").encode("ascii")
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    return bytes(raw)


def _decode_segment(raw: bytes, ns: str | None, what: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        if what == "key":
            raise InvalidKey(
                f"botwire: the key in namespace {ns!r} is not valid UTF-8 once percent-decoded "
                f"({raw[:80].decode('ascii', 'replace')!r}); keys are UTF-8 strings.",
                namespace=ns,
            ) from None
        raise InvalidArgument(
            "botwire: the namespace in the URL is not valid UTF-8 once percent-decoded."
        ) from None


def route_names(
    request: Request, *, prefix: bytes, segment: bytes | None
) -> tuple[str, str | None]:
    """(namespace, key) decoded exactly once from the raw path.

    The raw path is ``prefix + <ns> [+ "/" + segment + <key>]``: ``/v1/namespaces/`` then the
    namespace, then (for key routes, ``segment=b"keys/"``) the key, which is everything after,
    so ``%2F``, ``%3F``, ``%23``, ``%2E`` and invalid UTF-8 are seen as the client sent them.
    ``segment=None`` means the route has no key.
    """
    raw = _raw_path(request)
    if not raw.startswith(prefix):
        raise NotFound("botwire: no such route.")
    raw_ns, _, rest = raw[len(prefix) :].partition(b"/")
    ns = check_namespace(_decode_segment(raw_ns, None, "namespace"))
    if segment is None:
        return ns, None
    if not rest.startswith(segment):
        raise NotFound("botwire: no such route.", namespace=ns)
    key = _decode_segment(rest[len(segment) :], ns, "key")
    _check_key_echo(request, ns, key)
    return ns, check_key(key, ns)


def _check_key_echo(request: Request, ns: str, key: str) -> None:
    """Refuse (400 ``key_rewritten``, before any storage) a path whose key differs from the
    ``X-BotWire-Key`` the client sent: a proxy decoded and normalised the path (``a/../b`` →
    ``b``), and serving it would read, write or delete another key."""
    echo = header(request, b"x-botwire-key")
    if echo is None:
        return  # an older client, curl...: nothing to compare
    sent = unquote_to_bytes(echo.encode("latin-1")).decode("utf-8", "replace")
    if sent == key:
        return
    raise KeyRewritten(
        f"botwire: the key in the URL arrived as {key!r} but the client sent {sent!r} "
        "(X-BotWire-Key): something between them rewrote the path, typically a reverse proxy "
        "that decodes and normalises URLs (nginx 'proxy_pass http://upstream/;' with a URI "
        "part), or a client URL whose path is not this server's prefix. Pass the path through "
        "unchanged (nginx: 'proxy_pass http://upstream;' without a URI part; see "
        "docs/server.md). Nothing was read or written.",
        namespace=ns,
        key=sent,
        received_key=key,
    )


# A client that did not ask "Expect: 100-continue" is already uploading a body the server
# refused (413): closing with its bytes unread makes the kernel reset the connection, which
# destroys the 413 before the client reads it (it then reports "connection reset" and retries
# the upload). Like nginx's lingering close, the answer is sent at once and the rest of the
# upload (up to _DRAIN_MAX bytes, for up to _DRAIN_SECONDS) is read and discarded before the
# response is finished. A client that sent Expect (botwire's sync client, above 256 KiB) gets
# the 413 before it sends any of the body.
_DRAIN_MAX = 64 * 1024 * 1024
_DRAIN_SECONDS = 30.0


class DrainRefusedBody:
    """ASGI middleware: after a 413 to a client still uploading, drain its body (see above)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"done": False, "drain": False}

        async def tracked_receive() -> Any:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["done"] = True
            return message

        async def drain() -> None:
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return

        async def guarded_send(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(scope["headers"])
                declared = headers.get(b"content-length", b"")
                state["drain"] = (
                    not state["done"]
                    and b"expect" not in headers
                    and declared.isdigit()
                    and int(declared) <= _DRAIN_MAX
                )
            if (
                state["drain"]
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                await send({**message, "more_body": True})  # the whole answer is on the wire
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(drain(), _DRAIN_SECONDS)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app(scope, tracked_receive, guarded_send)


async def read_body(request: Request, limit: int, ns: str | None, key: str | None = None) -> bytes:
    """The request body, refused with 413 once it is known to exceed ``limit`` bytes.

    ``Content-Length`` is checked before reading; a chunked body is counted while it streams.
    """

    def too_large(size: int | str) -> ValueTooLarge:
        return ValueTooLarge(
            f"botwire: the request body ({size} bytes) exceeds this server's limit of {limit} "
            f"bytes for this route (namespace {ns!r}); store smaller values or split the batch.",
            namespace=ns,
            key=key,
            limit=limit,
        )

    declared = header(request, b"content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise InvalidArgument("botwire: the Content-Length header is not a number.") from None
        if length > limit:
            raise too_large(length)
    # The ASGI messages read here, as Request.stream() reads them, without its async generator
    # (~2 µs of every write's CPU): the body is read once, by this function only.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":  # the client's failure, not the server's: a 400, not a 500
            raise InvalidArgument(
                "botwire: the client closed the connection before sending the whole body."
            )
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(f"more than {limit}")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range for JSON values")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Above this many quotes, skipping strings would cost seconds: the quick count stands.
_EXACT_MAX_QUOTES = 200_000
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear and fast


def json_elements(body: bytes) -> int:
    """An upper bound of the arrays, objects and members a JSON text holds, counted without
    parsing it (C-speed byte counts; strings are skipped only when the quick count is high)."""

    def count(text: bytes) -> int:
        return text.count(b",") + text.count(b"[") + text.count(b"{")

    return count(body)


def check_json_elements(body: bytes, limit: int, ns: str | None, key: str | None) -> None:
    """Refuse (413) a body that would parse into more than ``limit`` elements, before parsing:
    a body of ``[],[],...`` costs ~60 bytes of memory per 3 bytes of text once parsed."""
    n = json_elements(body)
    if n <= limit:
        return
    if body.count(b'"') <= _EXACT_MAX_QUOTES:  # few strings: skip them, commas inside them
        n = json_elements(_JSON_STRING.sub(b'""', body))  # are not elements (~0.1 s at most)
    if n > limit:
        raise ValueTooLarge(
            f"botwire: the request body holds about {n} JSON elements (arrays, objects and "
            f"their members); this server's limit is {limit} per request (namespace {ns!r}). "
            "Send fewer or flatter values per request.",
            namespace=ns,
            key=key,
            quota="max_json_elements",
            limit=limit,
        )


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_parse_float)


def parse_json(body: bytes, ns: str | None, key: str | None = None) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity/overflowing floats, bounded nesting."""
    try:
        text = body.decode("utf-8")
        data = _DECODER.decode(text)
        if _SURROGATE_ESCAPE.search(body):
            # "\ud800" escapes are legal JSON but a lone surrogate is not storable text;
            # pairs (emoji) re-encode fine, lone ones raise here.
            dumps(data).encode("utf-8")
        return data
    except UnicodeEncodeError:
        why = "contains a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text"
    except UnicodeDecodeError:
        why = "is not valid UTF-8"
    except RecursionError:
        why = "is nested too deeply"
    except ValueError as exc:
        why = f"is not valid JSON ({str(exc)[:200]})"
    raise InvalidArgument(
        f"botwire: the request body {why}; send a UTF-8 JSON object.", namespace=ns, key=key
    )


async def read_json(
    request: Request, limit: int, ns: str | None, key: str | None = None
) -> dict[str, Any]:
    """The body as a JSON object: size-bounded read, element-bounded and admitted parse."""
    body = await read_body(request, limit, ns, key)
    ctx = request.app.state.botwire
    check_json_elements(body, ctx.settings.max_json_elements, ns, key)
    await ctx.admission.admit(request.scope, len(body))  # released once the answer is sent
    data = parse_json(body, ns, key)
    if not isinstance(data, dict):
        raise InvalidArgument(
            "botwire: the request body must be a JSON object.", namespace=ns, key=key
        )
    return data


def encode_value(value: Any, ns: str, key: str | None) -> str:
    """JSON text of a value that came from a parsed body (cannot fail but for depth)."""
    try:
        return dumps(value)
    except (ValueError, TypeError, RecursionError):
        raise InvalidArgument(
            f"botwire: the value for key {key!r} in namespace {ns!r} cannot be stored as JSON.",
            namespace=ns,
            key=key,
        ) from None


def parse_version_header(value: str | None, name: str, ns: str, key: str | None) -> int | None:
    """``If-Match: "7"`` → 7 (``W/`` and unquoted forms accepted); absent → ``None``."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if text.isdigit() and text.isascii() and len(text) <= 18:
        return int(text)
    raise InvalidArgument(
        f'botwire: {name}: {value[:60]!r} is not a version; send {name}: "<version>" as '
        "returned in the ETag header.",
        namespace=ns,
        key=key,
    )


def etag_matches(header: str, version: int) -> bool:
    """Whether an ``If-None-Match`` list names ``version`` (or is ``*``)."""
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == str(version):
            return True
    return False


def idempotency_key(request: Request, ns: str) -> str | None:
    value = header(request, b"idempotency-key")
    if value is None:
        return None
    if not (1 <= len(value) <= 255) or not value.isascii() or not value.isprintable():
        raise InvalidArgument(
            "botwire: the Idempotency-Key header must be 1 to 255 printable ASCII characters "
            "(a UUID works well).",
            namespace=ns,
        )
    return value


def query_int(
    request: Request, name: str, default: int | None, ns: str, low: int = 0, high: int | None = None
) -> int | None:
    if not request.scope.get("query_string"):
        return default  # the common case: no query string to parse
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidArgument(
            f"botwire: query parameter {name}={raw[:40]!r} must be a whole number {bounds}.",
            namespace=ns,
        )
    return value
