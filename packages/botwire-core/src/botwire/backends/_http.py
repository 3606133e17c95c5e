"""What the sync and async HTTP backends share: the target, headers, which Store call becomes
which request, what a response means (sans-I/O), and :class:`HTTPCommands`: the store methods and
the retry loop, written once as commands (``botwire._memory``) that the sync backend runs as plain
calls and the async one as coroutines. When to retry is ``_retry.py``."""

from __future__ import annotations

import os
from time import monotonic as _monotonic

from .. import _wire
from .._codec import decode, dumps
from .._errors import (
    _BY_STATUS,
    BotWireError,
    InvalidArgument,
    KeyRewritten,
    Misrouted,
    Unavailable,
    error_from_payload,
)
from .._memory import command
from .._record import record
from .._types import Op
from ._retry import DEFAULT_RETRIES, AttemptFailed, Attempts

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence
    from typing import Any

    from .._types import Changes, Entry, KeyPage, Policy, Usage
    from ._proxy import Proxy

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "ECHO_HEADER",
    "LARGE_BODY",
    "Call",
    "HTTPCommands",
    "Target",
    "base_headers",
    "batch_call",
    "changes_call",
    "clear_call",
    "environment_proxy",
    "get_call",
    "list_call",
    "new_idempotency_key",
    "policy_call",
    "usage_call",
]


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
        from .._config import shown_url

        bad = InvalidArgument(
            f"botwire: server URL {shown_url(url)!r} is not http(s)://host[:port][/prefix]."
        )
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
    def origin(self) -> str:
        """``scheme://host[:port]``, as messages show it."""
        return f"{'https' if self.tls else 'http'}://{self.host_header}"

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
    kind: str  # get | single | batch | list | clear | usage | policy
    op: Op | None = None
    namespace: str = ""
    key: str | None = None
    url: str = ""  # scheme://host[:port] the request goes to, for messages
    prefix: str = ""  # the URL's path prefix, for messages
    # The sync client sends a large body with "Expect: 100-continue"; off for the one retry
    # after an upload was cut (a proxy that drops the connection instead of relaying the 413:
    # without Expect the server reads the body and its 413 comes back through such a proxy).
    expect: bool = True

    @property
    def where(self) -> str:
        """``METHOD url`` without the query string (it may hold a prefix or a cursor)."""
        return f"{self.method} {self.url}{self.path.split('?', 1)[0]}"

    def result(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
        """The Store-protocol value for a final response, or raise the mapped error.

        Only botwire's own answers count: a 404 is "no such key" when it is botwire's
        ``not_found`` naming this very key; any other 404, a redirect, an HTML page or a JSON
        body of the wrong shape is :class:`~botwire.Misrouted` (a wrong URL must never read as an
        empty memory), and a key echoed back different from the one asked for is
        :class:`~botwire.KeyRewritten`.
        """
        headers = headers or {}
        payload = _payload(body)
        if 300 <= status < 400 and status != 304:
            raise self._misrouted(status, headers, body, redirect=True)
        error = _botwire_error(payload)
        if status == 405:  # botwire's client sends only methods its routes take: a wrong route
            raise self._misrouted(status, headers, body)
        if status == 404:
            if error is None or error.get("code") != "not_found" or self.kind != "get":
                raise self._misrouted(status, headers, body)
            echoed = error.get("key")
            if echoed is None:  # botwire's "no such route": a wrong path prefix
                raise self._misrouted(status, headers, body)
            if echoed != self.key:
                raise self._rewritten(echoed)
            return None
        if status >= 400:
            if error is None:
                raise self._foreign_error(status, headers, body)
            raise self._error(status, payload)
        if status < 200 or not isinstance(payload, dict):
            raise self._misrouted(status, headers, body)
        try:
            return self._read(payload)
        except (KeyError, TypeError, ValueError, IndexError):
            raise self._misrouted(status, headers, body) from None

    def _read(self, payload: dict[str, Any]) -> Any:
        if self.kind == "get":
            if payload["key"] != self.key:
                raise self._rewritten(payload["key"])
            return _wire.entry_from_wire(payload)
        if self.kind == "single":
            assert self.op is not None
            if _SINGLE_FIELD[self.op.kind] not in payload:  # not botwire's answer
                raise KeyError(_SINGLE_FIELD[self.op.kind])
            return [payload]
        if self.kind == "batch":
            results = payload["results"]
            if not isinstance(results, list):
                raise TypeError("results")
            return results
        if self.kind == "list":
            return _wire.page_from_wire(payload)
        if self.kind == "clear":
            return payload["deleted"]
        if self.kind == "policy":
            return _wire.policy_from_wire(payload["policy"])
        if self.kind == "changes":
            return _wire.changes_from_wire(payload)
        return _wire.usage_from_wire(payload)

    def _error(self, status: int, payload: Any) -> BotWireError:
        error = error_from_payload(status, payload)
        if error.namespace is None:
            error.namespace = self.namespace or None
        if error.key is None:
            error.key = self.key
        if isinstance(error, Misrouted):  # the server's key_rewritten: say which URL was called
            # ... and name what the caller asked for (the server's view stays in the message)
            error.namespace, error.key = self.namespace or None, self.key
            error.message = f"{error.message} [{self.where}: check BOTWIRE_URL and any proxy]"
            error.args = (error.message,)
            error.details.setdefault("url", self.url + self.path.split("?", 1)[0])
        return error

    def _rewritten(self, echoed: Any) -> KeyRewritten:
        return KeyRewritten(
            f"botwire: {self.where} asked for key {self.key!r} but the server answered for key "
            f"{echoed!r}: something between the client and the server rewrote the path (a "
            "reverse proxy that decodes and normalises URLs, e.g. nginx 'proxy_pass "
            "http://upstream/;' with a URI part), or BOTWIRE_URL carries a path that is not the "
            "server's prefix. Pass the path through unchanged (nginx: 'proxy_pass "
            "http://upstream;', see docs/server.md) and check BOTWIRE_URL. Nothing was returned.",
            namespace=self.namespace or None,
            key=self.key,
            url=self.url + self.path.split("?", 1)[0],
            echoed_key=echoed,
        )

    def _misrouted(
        self, status: int, headers: dict[str, str], body: bytes, *, redirect: bool = False
    ) -> Misrouted:
        url = self.url + self.path.split("?", 1)[0]
        location = headers.get("location")
        if redirect:
            what = (
                f"was redirected (HTTP {status}) to {location!r}; botwire does not follow "
                "redirects (a write would be sent twice and a token could leak to another host). "
                "Set BOTWIRE_URL to the server's real address (often https:// instead of "
                "http://, or a different path prefix)"
            )
        else:
            what = (
                f"was answered HTTP {status} by something that is not botwire's API "
                f"({_describe(headers, body)}). BOTWIRE_URL must be the server's base URL, with "
                "its path prefix if a proxy serves it under one (e.g. https://host/botwire), and "
                "nothing more; check it, and that a botwire-server answers at "
                f"{self.url}{self.prefix}/healthz"
            )
        return Misrouted(
            f"botwire: {self.where} {what}. No botwire server applied this call.",
            namespace=self.namespace or None,
            key=self.key,
            url=url,
            status=status,
            location=location,
        )

    def _foreign_error(self, status: int, headers: dict[str, str], body: bytes) -> BotWireError:
        """A 4xx/5xx whose body is not botwire's JSON (a proxy's or gateway's own page)."""
        cls = _BY_STATUS.get(status, Unavailable if status >= 500 else BotWireError)
        return cls(
            f"botwire: {self.where} answered HTTP {status} with {_describe(headers, body)}, "
            "not botwire's JSON: a proxy, gateway or load balancer in front of the server "
            "answered. Check BOTWIRE_URL and that proxy's logs.",
            namespace=self.namespace or None,
            key=self.key,
            url=self.url + self.path.split("?", 1)[0],
            status=status,
            location=headers.get("location"),
        )


_SINGLE_FIELD = {
    "set": "version",
    "delete": "deleted",
    "append": "length",
    "incr": "value",
    "pop": "found",
}


def _payload(body: bytes) -> Any:
    if not body:
        return None
    try:
        return decode(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None


def _botwire_error(payload: Any) -> dict[str, Any] | None:
    """The ``error`` object of a botwire error body, else ``None``."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error
    return None


def _describe(headers: dict[str, str], body: bytes) -> str:
    """``content-type text/html, body '<html>...'``: enough to recognise who answered."""
    kind = headers.get("content-type", "no content-type")
    if not body:
        return f"{kind}, empty body"
    text = " ".join(body[:120].decode("utf-8", "replace").split())
    return f"{kind}, body {text!r}"


# The contract of issue 12: every request whose path carries a key also sends the key,
# percent-encoded exactly as in the path, so a server can refuse a path a proxy rewrote.
ECHO_HEADER = "X-BotWire-Key"


def _call(
    target: Target,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    kind: str,
    ns: str,
    key: str | None = None,
    op: Op | None = None,
) -> Call:
    return Call(
        method, target.prefix + path, headers, body, kind, op, ns, key, target.origin, target.prefix
    )


def get_call(target: Target, headers: dict[str, str], ns: str, key: str, tail: int | None) -> Call:
    path = _wire.key_path(ns, key) + ("" if tail is None else f"?tail={tail}")
    headers = {**headers, ECHO_HEADER: _wire.quote_key(key)}
    return _call(target, "GET", path, headers, None, "get", ns, key)


def batch_call(
    target: Target,
    headers: dict[str, str],
    ns: str,
    ops: Sequence[Op],
    atomic: bool,
    idempotency_key: str | None,
    repeat_safe: bool = False,
) -> Call:
    """A batch's request. Every write but a plain set (a PUT: twice leaves the same value) is
    sent with an ``Idempotency-Key`` (the caller's, else a new one) so the retry loop may
    repeat it, unless ``repeat_safe``: its caller says applying it twice is harmless, so it
    goes without, and the server keeps no record of it. A delete is keyed too: applied twice
    it is harmless, but its retry after a lost answer would report ``False`` for a key that
    this very call deleted."""
    headers = {**headers, "Content-Type": "application/json"}
    keyed = not repeat_safe or idempotency_key is not None
    # A caller's key on a set goes by the batch route: a PUT records none, and a repeat of the
    # call would write the value again, over what others wrote since.
    own_set = idempotency_key is not None and ops[0].kind == "set"
    if len(ops) == 1 and not own_set and (single := _wire.single_request(ns, ops[0])) is not None:
        method, path, extra, body = single
        headers.update(extra)
        headers[ECHO_HEADER] = _wire.quote_key(ops[0].key)
        if method in ("PATCH", "DELETE") and keyed:
            headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        return _call(target, method, path, headers, body, "single", ns, ops[0].key, ops[0])
    if keyed and any(op.mutates for op in ops):
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
    body = _wire.batch_body(ops, atomic)
    key = ops[0].key if len(ops) == 1 else None
    return _call(
        target, "POST", _wire.namespace_path(ns) + "/batch", headers, body, "batch", ns, key
    )


def list_call(
    target: Target, headers: dict[str, str], ns: str, prefix: str, cursor: str | None, limit: int
) -> Call:
    path = _wire.keys_path(ns, prefix, cursor, limit)
    return _call(target, "GET", path, headers, None, "list", ns)


def changes_call(
    target: Target,
    headers: dict[str, str],
    ns: str,
    prefix: str,
    after: int | None,
    limit: int,
    wait: float,
) -> Call:
    path = _wire.changes_path(ns, prefix, after, limit, wait)
    return _call(target, "GET", path, headers, None, "changes", ns)


def clear_call(target: Target, headers: dict[str, str], ns: str) -> Call:
    """Keyed like a write, so a retry after a lost answer can be answered with the first
    count rather than 0 (by a server whose engine records a clear; others ignore the key)."""
    headers = {**headers, "Idempotency-Key": new_idempotency_key()}
    return _call(target, "DELETE", _wire.namespace_path(ns), headers, None, "clear", ns)


def usage_call(target: Target, headers: dict[str, str], ns: str) -> Call:
    return _call(target, "GET", _wire.namespace_path(ns), headers, None, "usage", ns)


def policy_call(
    target: Target, headers: dict[str, str], ns: str, changes: dict[str, Any] | None
) -> Call:
    """``GET`` the namespace's policy, or ``PUT`` ``changes`` (idempotent: safe to retry)."""
    path = _wire.namespace_path(ns) + "/policy"
    if changes is None:
        return _call(target, "GET", path, headers, None, "policy", ns)
    headers = {**headers, "Content-Type": "application/json"}
    return _call(target, "PUT", path, headers, dumps(changes).encode(), "policy", ns)


DEFAULT_KEEPALIVE_EXPIRY = 30.0  # see keepalive_expiry in HTTPStore
#: A request body above this is "large": the sync client sends it with Expect: 100-continue,
#: and a connection cut while it is sent is retried once only (``_retry.Attempts.failed``).
LARGE_BODY = 256 * 1024


def environment_proxy(target: Target) -> Proxy | None:
    """The proxy the environment names for ``target`` (see ``_proxy``), or ``None``."""
    # Most deployments set no *_proxy variable: then skip importing _proxy (a cold start 0.3 ms).
    if not any(name[-6:].lower() == "_proxy" for name in os.environ):
        return None
    from ._proxy import proxy_for

    return proxy_for(target.tls, target.host, target.port)


class HTTPCommands:
    """The Store methods of both HTTP backends and their one retry loop.

    Each method is a command (see ``botwire._memory``): it yields ``self._exchange(call,
    timeout)`` (one attempt: ``(status, headers, body)``, or :class:`AttemptFailed` for a
    transport failure) and ``self._sleep(seconds)``. ``HTTPStore`` (a ``SyncRun``) sends and
    sleeps before the yield, ``AsyncHTTPStore`` (an ``AsyncRun``) awaits what was yielded, so the
    loop, the policy (:class:`~._retry.Attempts`) and the calls are one definition for both.
    """

    _exchange: Callable[[Call, float], Any]  # one attempt (a coroutine on the async side)
    #: ``batch`` keys every write itself and takes ``repeat_safe=`` to send one without.
    keys_writes = True
    _sleep: Callable[[float], Any]  # time.sleep, or asyncio.sleep for its runner to await

    # One constructor for both backends: ``HTTPStore(url, token=..., timeout=10.0, retries=7,
    # deadline=None, keepalive_expiry=30.0)`` and the same for ``AsyncHTTPStore``.
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    ) -> None:
        self.url = url
        self.target = Target.parse(url)
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline if deadline is not None else timeout * (retries + 1)
        # Idle pooled connections older than this are closed, not reused: a NAT gateway or load
        # balancer drops idle flows silently (AWS NAT: 350 s), and a request on such a flow
        # hangs for the whole timeout. Keep it below the server's keep-alive (ours: 75 s).
        self.keepalive_expiry = keepalive_expiry
        self.proxy = environment_proxy(self.target)
        self._headers = base_headers(self.target, token)
        self._open()

    def _open(self) -> None:
        """Set up the transport (a connection pool, httpx clients): each backend's own."""

    def _send(self, call: Call, hold: float = 0.0) -> Generator[Any, Any, Any]:
        """Send ``call`` until it gets a final answer; :mod:`._retry` decides what is final.
        ``hold``: seconds the server may hold the answer (a long-poll), added to each
        attempt's timeout and to the deadline."""
        attempts = Attempts(
            call,
            timeout=self.timeout + hold,
            retries=self.retries,
            deadline=self.deadline + hold,
        )
        while True:
            timeout = attempts.begin()
            try:
                status, headers, body = yield self._exchange(call, timeout)
            except AttemptFailed as failed:  # refused, reset, timed out, garbled...
                wait = attempts.failed(
                    failed.cause, reused=failed.reused, upload_cut=failed.upload_cut
                )
                yield self._sleep(wait)
                continue
            done, value = attempts.answered(status, headers, body)
            if done:
                return value
            yield self._sleep(value)

    # -- the Store protocol --------------------------------------------------------------------

    @command
    def get(
        self, namespace: str, key: str, *, tail: int | None = None
    ) -> Generator[Any, Any, Entry | None]:
        entry: Entry | None = yield from self._send(
            get_call(self.target, self._headers, namespace, key, tail)
        )
        return entry

    @command
    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
        repeat_safe: bool = False,
    ) -> Generator[Any, Any, list[dict[str, Any]]]:
        """``Store.batch``; ``repeat_safe``: see :func:`batch_call` (``atomic(...).commit``)."""
        call = batch_call(
            self.target, self._headers, namespace, ops, atomic, idempotency_key, repeat_safe
        )
        results: list[dict[str, Any]] = yield from self._send(call)
        return results

    @command
    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> Generator[Any, Any, KeyPage]:
        page: KeyPage = yield from self._send(
            list_call(self.target, self._headers, namespace, prefix, cursor, limit)
        )
        return page

    @command
    def changes(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: int | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> Generator[Any, Any, Changes]:
        """``SupportsChanges`` over HTTP: long-polls of at most ``wait`` seconds each, and at
        most the server's bound (``_wire.MAX_WAIT``; it holds one at most its
        ``--watch-hold``), repeated until a change or ``wait`` has passed (``inf``: until a
        change); each attempt's timeout is the client's plus that poll's hold."""
        deadline = _monotonic() + max(0.0, float(wait))  # nan: no wait; inf stays inf
        while True:
            # finite, and what the server accepts: neither a socket timeout nor the query
            # parameter can take an infinite or hour-long wait
            hold = min(max(0.0, deadline - _monotonic()), _wire.MAX_WAIT)
            call = changes_call(self.target, self._headers, namespace, prefix, after, limit, hold)
            found: Changes = yield from self._send(call, hold=hold)
            if found.entries or after is None or _monotonic() >= deadline:
                return found
            after = max(after, found.version)

    @command
    def clear(self, namespace: str) -> Generator[Any, Any, int]:
        deleted: int = yield from self._send(clear_call(self.target, self._headers, namespace))
        return deleted

    @command
    def usage(self, namespace: str) -> Generator[Any, Any, Usage]:
        usage: Usage = yield from self._send(usage_call(self.target, self._headers, namespace))
        return usage

    @command
    def get_policy(self, namespace: str) -> Generator[Any, Any, Policy]:
        policy: Policy = yield from self._send(
            policy_call(self.target, self._headers, namespace, None)
        )
        return policy

    @command
    def set_policy(
        self, namespace: str, changes: dict[str, float | int | None]
    ) -> Generator[Any, Any, Policy]:
        policy: Policy = yield from self._send(
            policy_call(self.target, self._headers, namespace, dict(changes))
        )
        return policy
