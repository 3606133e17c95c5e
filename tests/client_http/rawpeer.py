"""A loopback HTTP/1.1 peer that misbehaves as a test scripts it: each request's head goes to
``serve(conn, index, head, rest)`` (``index`` counts requests from 1, ``rest`` is what arrived
after the head), which reads the body if it likes and answers, trickles, resets or stays silent;
it returns ``True`` to read another request on the same connection.

Example::

    def serve(conn, index, head, rest):
        conn.sendall(answer(200, b'{"deleted": 3}'))
        return True

    with RawPeer(serve) as peer:
        Memory("ns", url=peer.url).clear()
        assert header(peer.heads[0], "idempotency-key")
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

__all__ = ["RawPeer", "Serve", "answer", "header", "read_body", "reset"]

Serve = Callable[[socket.socket, int, bytes, bytes], bool]


def answer(status: int, body: bytes, extra: str = "") -> bytes:
    """A whole JSON response."""
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def header(head: bytes, name: str) -> str | None:
    """The value of header ``name`` in a request head, or None."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode("latin-1")
    return None


def read_body(conn: socket.socket, head: bytes, rest: bytes, most: int | None = None) -> bytes:
    """The request's Content-Length body (at most ``most`` bytes of it)."""
    want = int(header(head, "content-length") or 0)
    if most is not None:
        want = min(want, most)
    data = rest
    while len(data) < want:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def reset(conn: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a proxy that gives up on an upload does."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class RawPeer:
    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.heads: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                with self._lock:
                    self.heads.append(head)
                    index = len(self.heads)
                if not self.serve(conn, index, head, buf):
                    return
                buf = b""  # serve read the body (a keep-alive script answers whole requests)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
