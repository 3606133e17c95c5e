"""The sync HTTP backend: a small HTTP/1.1 client on the interpreter's own socket module.

Why not ``http.client``: importing it costs ~23 ms (it pulls in ``email.parser`` and ``ssl``).
Why not even ``socket``: its import builds enums (``enum``, ``functools``, ``collections``...),
~6 ms of a cold start, for constants that ``_socket`` has as plain ints. This client speaks only
what a botwire server sends (Content-Length or chunked bodies, keep-alive) and imports
``socket`` and ``ssl`` only for https. Idle keep-alive connections wait in a small pool shared by
all threads, so a warm invocation reuses one whatever thread serves it (Vercel's Python runtime
starts a thread per request: per-thread connections would leak one socket per request there).
"""

from __future__ import annotations

import _socket
import time
from _thread import allocate_lock

from .._types import Entry, KeyPage, Op, Usage
from . import _http as h
from ._retry import DEFAULT_RETRIES, Attempts

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["HTTPStore"]

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_IDLE = 8  # idle connections kept for reuse; more are closed when returned
_RECV = 65536


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


def _connect(host: str, port: int, timeout: float) -> Any:
    """A connected TCP socket, like ``socket.create_connection`` (first error if none works)."""
    errors: list[OSError] = []
    for family, kind, proto, _, address in _addresses(host, port):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            errors.append(exc)
    raise errors[0] if errors else OSError(f"getaddrinfo returned nothing for {host!r}")


def _connect_tls(host: str, port: int, timeout: float) -> Any:
    import socket  # only for https: ssl needs socket.socket, and both cost import time
    import ssl

    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ssl.create_default_context().wrap_socket(sock, server_hostname=host)


class _Connection:
    def __init__(self, target: h.Target, timeout: float) -> None:
        connect = _connect_tls if target.tls else _connect
        self.sock = connect(target.host, target.port, timeout)
        self.buffer = bytearray()  # received, not yet consumed
        self.requests = 0

    def close(self) -> None:
        try:  # noqa: SIM105 -- contextlib costs a cold start ~4 ms of imports
            self.sock.close()
        except OSError:
            pass

    # -- buffered reading (what socket.makefile gave, without io's machinery) ---------------------

    def _fill(self) -> bool:
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

    def exchange(self, call: h.Call, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """Send ``call`` and read the answer: (status, headers, body, keep-alive)."""
        self.sock.settimeout(timeout)
        lines = [f"{call.method} {call.path} HTTP/1.1"]
        lines.extend(f"{k}: {v}" for k, v in call.headers.items())
        body = call.body or b""
        if call.body is not None or call.method in ("PUT", "PATCH", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.requests += 1
        self.sock.sendall(head + body)
        status_line = self._readline()
        if not status_line.endswith(b"\n"):
            raise ConnectionResetError("server closed the connection before answering")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ConnectionError(f"malformed status line {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):  # EOF inside the headers: a cut response
                raise ConnectionResetError("connection closed in the middle of the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ConnectionError("too many response headers")
        keep = headers.get("connection", "").lower() != "close" and parts[0] != b"HTTP/1.0"
        if call.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b"", keep
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, self._read_chunked(), keep
        length = headers.get("content-length")
        if length is None:  # a body delimited by the end of the connection
            return status, headers, self._read_to_eof(), False
        data = self._read(int(length))
        if len(data) != int(length):
            raise ConnectionResetError("connection closed in the middle of the response body")
        return status, headers, data, keep

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self._readline()
            if not size_line:
                raise ConnectionResetError("connection closed in the middle of a chunked body")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunk = self._read(size)
            if len(chunk) != size:
                raise ConnectionResetError("connection closed in the middle of a chunk")
            chunks.append(chunk)
            self._readline()


class HTTPStore:
    """A :class:`~botwire.store.Store` that talks to a botwire server over HTTP.

    Example::

        from botwire import Memory
        memory = Memory("user-42", url="https://memory.example.com", token="...")

    Every request is safe to retry (reads and unconditional PUT/DELETE are idempotent; other
    writes carry an ``Idempotency-Key``), so connection failures, 502/503/504 and 429s with a
    short ``Retry-After`` are retried with backoff and jitter until ``retries`` or the overall
    deadline (``timeout * (retries + 1)``) run out; then :class:`~botwire.Unavailable` is
    raised (the policy is :mod:`botwire.backends._retry`, shared with the async backend).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
    ) -> None:
        self.url = url
        self.target = h.Target.parse(url)
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline if deadline is not None else timeout * (retries + 1)
        self._headers = h.base_headers(self.target, token)
        self._idle: list[_Connection] = []
        self._lock = allocate_lock()
        self._closed = False
        self.connections_opened = 0  # observable: warm invocations must reuse the connection

    # -- transport -----------------------------------------------------------------------------

    def _acquire(self, timeout: float) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()  # the most recently used: least likely to be stale
            self.connections_opened += 1
        return _Connection(self.target, timeout)

    def _release(self, conn: _Connection, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _send(self, call: h.Call) -> Any:
        """Send ``call`` until it gets a final answer; :mod:`._retry` decides what is final."""
        attempts = Attempts(
            call, timeout=self.timeout, retries=self.retries, deadline=self.deadline
        )
        while True:
            timeout = attempts.begin()
            conn: _Connection | None = None
            try:
                conn = self._acquire(timeout)
                status, headers, body, keep = conn.exchange(call, timeout)
            except (OSError, ValueError) as exc:  # refused, reset, timed out, garbled, TLS...
                reused = conn is not None and conn.requests > 1
                if conn is not None:
                    conn.close()
                time.sleep(attempts.failed(exc, reused=reused))
                continue
            self._release(conn, keep)
            done, value = attempts.answered(status, headers, body)
            if done:
                return value
            time.sleep(value)

    # -- the Store protocol --------------------------------------------------------------------

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        entry: Entry | None = self._send(
            h.get_call(self.target, self._headers, namespace, key, tail)
        )
        return entry

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        call = h.batch_call(self.target, self._headers, namespace, ops, atomic, idempotency_key)
        results: list[dict[str, Any]] = self._send(call)
        return results

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        page: KeyPage = self._send(
            h.list_call(self.target, self._headers, namespace, prefix, cursor, limit)
        )
        return page

    def clear(self, namespace: str) -> int:
        deleted: int = self._send(h.clear_call(self.target, self._headers, namespace))
        return deleted

    def usage(self, namespace: str) -> Usage:
        usage: Usage = self._send(h.usage_call(self.target, self._headers, namespace))
        return usage

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        return f"HTTPStore({self.url!r})"
