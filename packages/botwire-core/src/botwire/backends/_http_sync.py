"""The sync HTTP backend: a small HTTP/1.1 client on the interpreter's own socket module.

Why not ``http.client``: importing it costs ~23 ms (it pulls in ``email.parser`` and ``ssl``).
Why not even ``socket``: its import builds enums (``enum``, ``functools``, ``collections``...),
~6 ms of a cold start, for constants that ``_socket`` has as plain ints. This client speaks only
what a botwire server sends (Content-Length or chunked bodies, keep-alive) and imports
``socket`` and ``ssl`` only for https. Idle keep-alive connections wait in a small pool shared by
all threads, so a warm invocation reuses one whatever thread serves it (Vercel's Python runtime
starts a thread per request: per-thread connections would leak one socket per request there).

A stdlib substitute (docs/design.md, "Substitutes"): tests/core/substitutes/test_http_client.py
compares it with ``http.client`` on the same answers, plain and over TLS.
"""

from __future__ import annotations

import _socket
import time
from _thread import allocate_lock

from .. import _fork
from .._memory import SyncRun
from . import _http as h
from ._http import HTTPCommands
from ._retry import AttemptFailed

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

    from ._proxy import Proxy

__all__ = ["HTTPStore"]

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_INTERIM = 32  # 1xx responses skipped before one request's final answer
_MAX_IDLE = 8  # idle connections kept for reuse; more are closed when returned
_RECV = 65536
# Bodies above this size are sent with "Expect: 100-continue": a server that refuses them (413
# value_too_large) says so before the upload instead of resetting the connection mid-way.
EXPECT_THRESHOLD = h.LARGE_BODY
EXPECT_WAIT = 1.0  # seconds to wait for "100 Continue" before sending the body anyway (as curl)
_PEEK = _socket.MSG_PEEK


class FramingError(ConnectionError):
    """A response that cannot be framed exactly: the connection is discarded, never reused."""


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` results; an IP literal (the usual in-VPC server URL) skips the resolver."""
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
        except OSError:
            continue
        address = (host, port) if family == _socket.AF_INET else (host, port, 0, 0)
        return [(family, _socket.SOCK_STREAM, _socket.IPPROTO_TCP, "", address)]
    # A str host makes getaddrinfo import the idna codec (unicodedata, stringprep): ~2 ms.
    name = host.encode("ascii") if host.isascii() else host.encode("idna")
    return _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)


def _connect(host: str, port: int, end: float) -> Any:
    """A connected TCP socket, like ``socket.create_connection`` (first error if none works);
    every address tried before ``end`` (a ``time.monotonic()``), not each for a timeout."""
    errors: list[OSError] = []
    for family, kind, proto, _, address in _addresses(host, port):
        sock = _socket.socket(family, kind, proto)
        try:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(left)
            sock.connect(address)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            errors.append(exc)
    raise errors[0] if errors else OSError(f"getaddrinfo returned nothing for {host!r}")


def _wrap_tls(raw: Any, host: str, url: str) -> Any:
    """TLS over a connected socket (direct, or a proxy's CONNECT tunnel)."""
    import socket  # only for https: ssl needs socket.socket, and both cost import time
    import ssl

    from . import _proxy

    timeout = raw.gettimeout()
    sock = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.detach())
    sock.settimeout(timeout)
    try:
        return _proxy.ssl_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise _proxy.certificate_error(exc, url, host) from exc
    except BaseException:
        sock.close()
        raise


class _Connection:
    """One HTTP/1.1 connection: direct, through an HTTP proxy (absolute-form requests), or
    through a proxy's ``CONNECT`` tunnel (https). Reusable only while ``reusable`` is true: set
    after a response read exactly to its last byte with nothing unexpected behind it.

    Every send and receive ends by ``end`` (set per exchange): a socket timeout alone restarts
    with each byte received, so a peer trickling its answer held a call far past its deadline.
    """

    def __init__(self, target: h.Target, timeout: float, proxy: Proxy | None) -> None:
        self.buffer = bytearray()  # received, not yet consumed
        self.requests = 0
        self.reusable = False
        self.idle_since = 0.0
        self.proxy_authorization: str | None = None
        self.absolute = ""  # "http://host:port" before paths when talking to an HTTP proxy
        self.timeout = timeout
        self.end = time.monotonic() + timeout  # connect, tunnel and TLS handshake included
        url = f"{'https' if target.tls else 'http'}://{target.host_header}{target.prefix}"
        if proxy is None:
            self.sock = _connect(target.host, target.port, self.end)
        else:
            try:
                self.sock = _connect(proxy.host, proxy.port, self.end)
            except OSError as exc:
                raise ConnectionError(f"proxy {proxy.url} (from the environment): {exc}") from exc
        try:
            if proxy is not None and target.tls:
                self._tunnel(target, proxy)
            elif proxy is not None:
                self.absolute = url.removesuffix(target.prefix)
                self.proxy_authorization = proxy.authorization
            if target.tls:
                self.sock.settimeout(self._left())
                self.sock = _wrap_tls(self.sock, target.host, url)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.reusable = False
        try:  # noqa: SIM105 -- contextlib costs a cold start ~4 ms of imports
            self.sock.close()
        except OSError:
            pass

    def _tunnel(self, target: h.Target, proxy: Proxy) -> None:
        """``CONNECT host:port`` through an HTTP proxy; TLS then runs end to end inside it."""
        authority = target.host_header if target.port != 443 else f"{target.host_header}:443"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        _version, status, _headers = self._read_head()
        if 200 <= status < 300 and not self.buffer:
            return
        from ._proxy import tunnel_refused  # loaded already: the proxy came from it

        refused = tunnel_refused(proxy.url, authority, status)
        if refused is not None:  # a configuration problem: retrying cannot help
            raise refused
        where = f"the proxy {proxy.url} (from HTTPS_PROXY/ALL_PROXY)"
        raise ConnectionError(f"{where} could not open a tunnel to {authority}: HTTP {status}")

    # -- buffered reading (what socket.makefile gave, without io's machinery) ---------------------

    def _left(self, most: float | None = None) -> float:
        """Seconds left before ``end`` (at most ``most``); TimeoutError when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out: no whole answer within {self.timeout:.1f} s")
        return left if most is None else min(left, most)

    def _send(self, data: bytes) -> None:
        self.sock.settimeout(self._left())  # sendall's timeout bounds the whole of it
        self.sock.sendall(data)

    def _fill(self, most: float | None = None) -> bool:
        self.sock.settimeout(self._left(most))
        data = self.sock.recv(_RECV)
        self.buffer += data
        return bool(data)

    def _readline(self) -> bytes:
        """One line with its ``\\n``; without it when the line is too long or the peer closed."""
        searched = 0
        while True:
            end = self.buffer.find(b"\n", searched)
            if end >= 0:
                return self._take(end + 1)
            if len(self.buffer) >= _MAX_LINE:
                return self._take(_MAX_LINE)
            searched = len(self.buffer)
            if not self._fill():
                return self._take(len(self.buffer))

    def _read(self, size: int) -> bytes:
        """``size`` bytes, or fewer when the peer closed first."""
        while len(self.buffer) < size and self._fill():
            pass
        return self._take(size)

    def _read_to_eof(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self.buffer))

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def idle_ok(self) -> bool:
        """Whether an idle pooled connection may carry a request: nothing arrived while it was
        idle (no FIN, no stray bytes, no unread TLS record). One non-blocking peek."""
        if self.buffer:
            return False
        pending = getattr(self.sock, "pending", None)
        if pending is not None and pending():
            return False
        try:  # the raw socket's recv, also under TLS: any byte (or EOF) means unusable
            self.sock.settimeout(0.0)
            _socket.socket.recv(self.sock, 1, _PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    # -- one exchange -----------------------------------------------------------------------------

    def _read_head(self) -> tuple[bytes, int, dict[str, str]]:
        """A status line and header block, strictly: anything else raises :class:`FramingError`."""
        status_line = self._readline()
        if not status_line.endswith(b"\n"):
            if not status_line:
                raise ConnectionResetError("server closed the connection before answering")
            raise FramingError("connection closed in the middle of the status line")
        parts = status_line.rstrip(b"\r\n").split(b" ", 2)
        if (
            len(parts) < 2
            or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0")
            or len(parts[1]) != 3
            or not parts[1].isdigit()
        ):
            raise FramingError(f"malformed status line {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._readline()
            if line in (b"\r\n", b"\n"):
                return parts[0], status, headers
            if not line.endswith(b"\n"):  # EOF inside the headers: a cut response
                raise FramingError("connection closed in the middle of the response headers")
            text = line.decode("latin-1").rstrip("\r\n")
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip() or text[0] in " \t":
                raise FramingError(f"malformed response header line {line[:80]!r}")
            name = name.lower()
            value = value.strip(" \t")
            if name in headers:  # RFC 9110 5.3: repeated fields combine with commas
                value = headers[name] + ", " + value
            headers[name] = value
        raise FramingError("too many response headers")

    def _final_head(
        self, call: h.Call, first: tuple[bytes, int, dict[str, str]] | None = None
    ) -> tuple[bytes, int, dict[str, str]]:
        """Read (and skip) interim 1xx responses up to the final one (RFC 9110 15.2)."""
        for _ in range(_MAX_INTERIM):
            version, status, headers = first or self._read_head()
            first = None
            if status == 101:
                raise FramingError("unexpected 101 Switching Protocols (no upgrade was asked)")
            if status >= 200:
                return version, status, headers
        raise FramingError(f"more than {_MAX_INTERIM} interim 1xx responses to one request")

    def _body(
        self, call: h.Call, version: bytes, status: int, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """The body, framed per RFC 9112 6.3, and whether the connection can be reused."""
        keep = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if call.method == "HEAD" or status in (204, 304):
            return b"", keep
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                return self._read_to_eof(), False  # delimited by the close
            # Transfer-Encoding overrides Content-Length; with both, close afterwards (6.1).
            return self._read_chunked(), keep and "content-length" not in headers
        length_text = headers.get("content-length")
        if length_text is None:
            return self._read_to_eof(), False  # a body delimited by the end of the connection
        values = {v.strip() for v in length_text.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise FramingError(f"invalid Content-Length {length_text[:80]!r}")
        length = int(values.pop())
        data = self._read(length)
        if len(data) != length:
            raise FramingError("connection closed in the middle of the response body")
        return data, keep

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self._readline()
            if not size_line.endswith(b"\n"):
                raise FramingError("connection closed in the middle of a chunked body")
            size_text = size_line.split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF") or len(size_text) > 16:
                raise FramingError(f"invalid chunk size line {size_line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(_MAX_HEADERS):  # trailers, up to the empty line
                    line = self._readline()
                    if line in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not line.endswith(b"\n"):
                        break
                raise FramingError("malformed or cut trailer section of a chunked body")
            chunk = self._read(size)
            if len(chunk) != size:
                raise FramingError("connection closed in the middle of a chunk")
            chunks.append(chunk)
            if self._readline() not in (b"\r\n", b"\n"):
                raise FramingError("chunk data not followed by CRLF")

    def _request_head(self, call: h.Call, body: bytes, expect: bool) -> bytes:
        lines = [f"{call.method} {self.absolute}{call.path} HTTP/1.1"]
        lines.extend(f"{k}: {v}" for k, v in call.headers.items())
        if call.body is not None or call.method in ("PUT", "PATCH", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        if expect:
            lines.append("Expect: 100-continue")
        if self.proxy_authorization:
            lines.append(f"Proxy-Authorization: {self.proxy_authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def exchange(self, call: h.Call, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """Send ``call`` and read the answer: (status, headers, body, keep-alive).

        Interim 1xx answers are skipped; a response that cannot be framed exactly raises (the
        caller discards the connection); ``keep`` is true only when the response was read to its
        last byte, nothing follows it, and neither side asked to close.
        """
        self.reusable = False
        self.timeout = timeout
        self.end = time.monotonic() + timeout
        body = call.body or b""
        expect = call.expect and len(body) > EXPECT_THRESHOLD
        head = self._request_head(call, body, expect)
        self.requests += 1
        first = None
        sent = True
        if expect:
            self._send(head)
            try:  # noqa: SIM105 -- contextlib costs a cold start ~4 ms of imports
                self._fill(EXPECT_WAIT)
            except TimeoutError:  # an HTTP/1.0 peer or a proxy that never says 100: send anyway
                pass
            if self.buffer:
                first = self._read_head()
                if first[1] == 100:
                    first = None  # go ahead
                elif first[1] >= 200:
                    sent = False  # a final answer instead of 100: the body is never sent
            if sent:
                sent = self._send_body(body)
        else:
            sent = self._send_body(head + body)
        version, status, headers = self._final_head(call, first)
        data, keep = self._body(call, version, status, headers)
        keep = keep and sent and not self.buffer  # bytes beyond the framed response: discard
        self.reusable = keep
        return status, headers, data, keep

    def _send_body(self, data: bytes) -> bool:
        """Send ``data``; ``False`` when that failed but an answer is there to read."""
        try:
            self._send(data)
        except OSError:
            # The peer may have answered (e.g. 413) and closed before reading the whole
            # upload: read that answer if it is there, else report the send failure.
            if not self._answer_waiting():
                raise
            return False
        return True

    def _answer_waiting(self) -> bool:
        try:  # an answer already there is read even when the send used up the attempt's time
            self.sock.settimeout(min(0.5, max(0.0, self.end - time.monotonic())))
            self.buffer += self.sock.recv(_RECV)
        except OSError:
            return False
        return bool(self.buffer)


class HTTPStore(SyncRun, HTTPCommands):
    """A :class:`~botwire.store.Store` that talks to a botwire server over HTTP.

    Example::

        from botwire import Memory
        memory = Memory("user-42", url="https://memory.example.com", token="...")

    Every request is safe to retry (reads and unconditional PUT are idempotent; other writes,
    DELETE included, carry an ``Idempotency-Key``), so connection failures, 502/503/504 and
    429s with a short ``Retry-After`` are retried with backoff and jitter until ``retries`` or
    the overall deadline (``timeout * (retries + 1)``) run out; then
    :class:`~botwire.Unavailable` is raised (the policy is :mod:`botwire.backends._retry`; the
    loop and the Store methods are :class:`~botwire.backends._http.HTTPCommands`, shared with
    the async backend)."""

    _sleep = staticmethod(time.sleep)

    def _open(self) -> None:
        """This transport's own state (the settings are :class:`HTTPCommands`')."""
        self._idle: list[_Connection] = []
        self._lock = allocate_lock()
        self._closed = False
        self.connections_opened = 0  # observable: warm invocations must reuse the connection
        _fork.register(self)

    # -- transport -----------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: never touch the parent's sockets (closing our copy of the file
        descriptor leaves the parent's connection intact); a lock another thread held at the
        fork is replaced."""
        self._lock = allocate_lock()
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _acquire(self, timeout: float) -> _Connection:
        now = time.monotonic()
        stale: list[_Connection] = []
        conn = None
        with self._lock:
            while self._idle:
                candidate = self._idle.pop()  # the most recently used: least likely stale
                if now - candidate.idle_since <= self.keepalive_expiry and candidate.idle_ok():
                    conn = candidate
                    break
                stale.append(candidate)
            if conn is None:
                self.connections_opened += 1
        for old in stale:
            old.close()
        return conn if conn is not None else _Connection(self.target, timeout, self.proxy)

    def _release(self, conn: _Connection, keep: bool) -> None:
        with self._lock:
            if keep and conn.reusable and not self._closed and len(self._idle) < _MAX_IDLE:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
                return
        conn.close()

    def _exchange(self, call: h.Call, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """One attempt on a pooled (or new) connection, connecting included, within
        ``timeout``; a failure closes that connection."""
        conn: _Connection | None = None
        end = time.monotonic() + timeout
        try:
            conn = self._acquire(timeout)
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out: no whole answer within {timeout:.1f} s")
            status, headers, body, keep = conn.exchange(call, left)
        except (OSError, ValueError) as exc:  # refused, reset, timed out, garbled, TLS...
            reused = conn is not None and conn.requests > 1
            if conn is not None:
                conn.close()
            cut = conn is not None and _cut_upload(call, exc)
            if cut:
                call.expect = False  # the retry: see Call.expect
            raise AttemptFailed(exc, reused, upload_cut=cut) from exc
        self._release(conn, keep)
        return status, headers, body

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        from .._config import shown_url

        return f"HTTPStore({shown_url(self.url)!r})"


def _cut_upload(call: h.Call, exc: BaseException) -> bool:
    """Whether ``exc`` cut a large upload: the connection reset, aborted or closed (our own
    "closed before answering" is a ConnectionResetError) with no answer, the body large."""
    return len(call.body or b"") > h.LARGE_BODY and isinstance(
        exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
    )
