"""A loopback TCP proxy that breaks HTTP exchanges on purpose.

It sits between a client and a real server, reads each HTTP/1.1 request whole (headers and
Content-Length body) and then, per request, does one of:

- ``pass``: forward the request and the whole response;
- ``drop_before``: close the client's connection without forwarding (the server never sees it);
- ``drop_after``: forward the request, wait for the server's whole response, then close the
  client's connection instead of answering (the server applied it; the client cannot know);
- ``cut_response``: forward, then send only half of the response and close;
- ``reset``: like ``drop_after`` but with a TCP RST instead of a FIN;
- ``stall``: forward nothing and keep the connection open silent (the client must time out);
- ``unavailable``: answer ``503`` with ``Retry-After: 0`` without forwarding (an overloaded
  load balancer);
- ``html_404``: answer an nginx-style HTML ``404 Not Found`` page (a wrong path / another app);
- ``html_200``: answer ``200 OK`` with an HTML page (a single-page app's catch-all route);
- ``redirect_301``: answer ``301 Moved Permanently`` to the same path on ``https://`` (an
  http→https redirect in front of the server);
- ``rewrite_path``: percent-decode the request path and collapse ``.``/``..`` segments before
  forwarding, as nginx does with ``proxy_pass http://up/;`` (so ``a%2F..%2Fb`` reaches ``b``);
- ``rewrite_path_no_echo``: the same, and drop the client's ``X-BotWire-Key`` header (an older
  server that cannot check it: the client must catch the key echoed back).
- ``interim``: forward, and send unsolicited ``100 Continue`` and ``103 Early Hints`` interim
  responses before the real one (as some proxies and CDNs do; RFC 9110 15.2 lets them);
- ``cut_headers``: forward, then send the response cut in the middle of its header block and
  close (a proxy or server dying mid-answer).

Actions come from a script (consumed in order) and then from a seeded random choice.
``go_down(seconds, how)`` makes the upstream look down for a while, whatever the script says:
``how="502"`` answers nginx's HTML ``502 Bad Gateway`` page (a load balancer whose backend is
restarting), ``how="refuse"`` closes the listening socket and every open connection, so new
connections are refused (a restart without a load balancer).
"""

from __future__ import annotations

import asyncio
import posixpath
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable

from support.loopserver import LoopServer

__all__ = ["ACTIONS", "FaultProxy"]

ACTIONS = (
    "pass",
    "drop_before",
    "drop_after",
    "cut_response",
    "reset",
    "stall",
    "unavailable",
    "html_404",
    "html_200",
    "redirect_301",
    "rewrite_path",
    "rewrite_path_no_echo",
    "interim",
    "cut_headers",
)
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
)
_503_BODY = b'{"error":{"code":"unavailable","message":"proxy says busy"}}'
_503 = (  # Content-Length computed: a hand-counted 58 for these 60 bytes desynchronised clients
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(_503_BODY)}\r\n\r\n".encode()
    + _503_BODY
)


def _html(status: str, extra: bytes = b"") -> bytes:
    body = (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}"
        "</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    return (
        (
            f"HTTP/1.1 {status}\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + body
    )


_502 = _html("502 Bad Gateway")
_404 = _html("404 Not Found")
_200 = _html("200 OK")


def _rewrite(request: bytes, drop_echo: bool) -> bytes:
    """The request with its path decoded and dot-segments collapsed (nginx's normalisation)."""
    head, sep, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ", 2)
    path, q, query = target.partition(b"?")
    decoded = urllib.parse.unquote_to_bytes(path)
    normal = posixpath.normpath(decoded.decode("utf-8", "surrogateescape"))
    if decoded.endswith(b"/") and not normal.endswith("/"):
        normal += "/"
    quoted = urllib.parse.quote(normal.encode("utf-8", "surrogateescape"), safe="/:@")
    lines[0] = b" ".join((method, quoted.encode() + q + query, version))
    if drop_echo:
        lines = [ln for ln in lines if not ln.lower().startswith(b"x-botwire-key:")]
    return b"\r\n".join(lines) + sep + body


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (headers + Content-Length body); None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ConnectionResetError("truncated message") from exc
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("the fault proxy handles Content-Length messages only")
    body = await reader.readexactly(length) if length else b""
    return head + body


class FaultProxy(LoopServer):
    """Start with ``with FaultProxy(upstream_port, script=[...], faults={...}) as proxy:``;
    point the client at ``proxy.url``. ``proxy.counts`` tells which actions happened;
    ``proxy.bytes_up`` / ``proxy.bytes_down`` count the bytes of the requests forwarded to the
    server and of the responses forwarded back (the benchmarks' bytes on the wire)."""

    thread_name = "fault-proxy"

    def __init__(
        self,
        upstream_port: int,
        *,
        script: Iterable[str] = (),
        faults: dict[str, float] | None = None,
        seed: int = 0,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.script = list(script)
        self.faults = faults or {}
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.bytes_up = 0
        self.bytes_down = 0
        self.port = 0
        self.down_until = 0.0  # monotonic time until which go_down() holds
        self.down_how = ""
        self.down_answers = 0  # requests answered "down" (502) so far
        self._writers: set[asyncio.StreamWriter] = set()
        super().__init__()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_action(self) -> str:
        with self._lock:
            if self.script:
                action = self.script.pop(0)
            else:
                action = "pass"
                roll = self.random.random()
                for name, p in self.faults.items():
                    if roll < p:
                        action = name
                        break
                    roll -= p
            self.counts[action] += 1
            return action

    def set_script(self, actions: Iterable[str]) -> None:
        with self._lock:
            self.script = list(actions)

    def go_down(self, seconds: float, how: str = "502") -> None:
        """Look down for ``seconds`` from now: ``"502"`` (an HTML 502 for every request) or
        ``"refuse"`` (no listening socket, open connections closed); then back to normal."""
        if how not in ("502", "refuse"):
            raise ValueError(f"how={how!r}: use '502' or 'refuse'")
        loop = self._loop
        assert loop is not None, "start the proxy first"
        self.down_how = how
        self.down_until = time.monotonic() + seconds
        if how == "refuse":
            done = threading.Event()

            def stop_listening() -> None:
                assert self._server is not None
                self._server.close()
                for writer in list(self._writers):
                    writer.close()
                loop.call_later(seconds, lambda: loop.create_task(self._listen()))
                done.set()

            loop.call_soon_threadsafe(stop_listening)
            done.wait(5)

    def _is_down(self) -> bool:
        return self.down_how == "502" and time.monotonic() < self.down_until

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._writers.add(cwriter)
        try:
            while True:
                request = await _read_message(creader)
                if request is None:
                    return
                if self._is_down():
                    self.down_answers += 1
                    cwriter.write(_502)
                    await cwriter.drain()
                    continue
                action = self.next_action()
                if action == "drop_before":
                    return
                if action == "unavailable":
                    cwriter.write(_503)
                    await cwriter.drain()
                    continue
                if action == "stall":
                    await asyncio.sleep(3600)
                    return
                if action in ("html_404", "html_200", "redirect_301"):
                    target = request.split(b" ", 2)[1].decode("latin-1")
                    location = f"https://127.0.0.1:{self.port}{target}".encode()
                    cwriter.write(
                        {"html_404": _404, "html_200": _200}.get(action)
                        or _html("301 Moved Permanently", b"Location: " + location + b"\r\n")
                    )
                    await cwriter.drain()
                    continue
                if action.startswith("rewrite_path"):
                    request = _rewrite(request, drop_echo=action == "rewrite_path_no_echo")
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.upstream)
                ureader, uwriter = upstream
                uwriter.write(request)
                await uwriter.drain()
                self.bytes_up += len(request)
                response = last = await _read_message(ureader)
                while last is not None and last[9:10] == b"1":  # an interim 1xx: keep
                    last = await _read_message(ureader)  # reading up to the final answer
                    response = None if last is None else response + last  # type: ignore[operator]
                if response is None:
                    return
                if action == "drop_after":
                    return
                if action == "reset":
                    sock = cwriter.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if action == "cut_response":
                    cwriter.write(response[: len(response) // 2])
                    await cwriter.drain()
                    return
                if action == "cut_headers":
                    cwriter.write(response[: response.index(b"\r\n\r\n") // 2])
                    await cwriter.drain()
                    return
                if action == "interim":
                    response = INTERIM + response
                cwriter.write(response)
                await cwriter.drain()
                self.bytes_down += len(response)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            self._writers.discard(cwriter)
            cwriter.close()
            if upstream is not None:
                upstream[1].close()
