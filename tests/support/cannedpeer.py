"""A loopback HTTP/1.1 peer, plain or TLS (a fresh trustme CA), that answers each request with
canned bytes chosen by its path: the same bytes whichever client asks, so botwire's client and
``http.client`` can be compared on exactly the same answers.

``answers`` maps a path (without the query) to ``(raw response bytes, close_after)``; a path not
in it gets ``default``. Requests are read as a server would (head, then a ``Content-Length``
body); a request with ``Expect: 100-continue`` gets ``100 Continue`` first. With ``piece=N``
answers leave N bytes at a time (each its own TCP segment, and TLS record), to test buffering.
``connections`` counts accepted connections; ``requests`` and ``bodies`` keep each request's
head and body.

Example::

    with CannedPeer({"/a": (b"HTTP/1.1 204 No Content\\r\\n\\r\\n", False)}, tls=True) as peer:
        ...  # peer.url, peer.ca_pem (for SSL_CERT_FILE), peer.client_context()
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CannedPeer"]

Answer = tuple[bytes, bool]


class CannedPeer:
    def __init__(
        self,
        answers: dict[str, Answer],
        *,
        tls: bool = False,
        default: Answer | None = None,
        directory: Path | None = None,
        piece: int = 0,
    ) -> None:
        self.answers = answers
        self.piece = piece
        self.default = default
        self.connections = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        self._server_ctx: ssl.SSLContext | None = None
        self.ca: Any = None
        self.ca_pem: Path | None = None
        if tls:
            import trustme

            self.ca = trustme.CA()
            cert = self.ca.issue_cert("127.0.0.1", "localhost")
            self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(self._server_ctx)
            if directory is not None:
                self.ca_pem = directory / "canned-ca.pem"
                self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this peer's CA (for ``http.client``)."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            t = threading.Thread(target=self._conn, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _conn(self, raw: socket.socket) -> None:
        conn: Any = raw
        with self._lock:
            self._open.append(raw)
        try:
            conn.settimeout(10)
            if self._server_ctx is not None:  # the wrapped socket takes over raw's descriptor
                conn = self._server_ctx.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._open.append(conn)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    if name.strip().lower() == b"expect" and b"100" in value:
                        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                with self._lock:
                    self.requests.append(head)
                    self.bodies.append(body)
                path = lines[0].split(b" ")[1].decode("latin-1").split("?", 1)[0]
                answer = self.answers.get(path, self.default)
                if answer is None:
                    return
                self._send(conn, answer[0])
                if answer[1]:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def _send(self, conn: Any, data: bytes) -> None:
        """All of ``data``; with ``piece``, ``piece`` bytes a segment (a TLS record each)."""
        if not self.piece:
            conn.sendall(data)
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), self.piece):
            conn.sendall(data[i : i + self.piece])
            time.sleep(0.0002)  # let each piece leave as its own segment

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept() (close() alone does not, on Linux)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self._lock:
            for raw in self._open:
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_RDWR)
        self._accept.join(5)
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> CannedPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
