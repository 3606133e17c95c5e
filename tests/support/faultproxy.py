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
- ``interim``: forward, and send unsolicited ``100 Continue`` and ``103 Early Hints`` interim
  responses before the real one (as some proxies and CDNs do; RFC 9110 15.2 lets them);
- ``cut_headers``: forward, then send the response cut in the middle of its header block and
  close (a proxy or server dying mid-answer).

Actions come from a script (consumed in order) and then from a seeded random choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable

__all__ = ["ACTIONS", "FaultProxy"]

ACTIONS = (
    "pass",
    "drop_before",
    "drop_after",
    "cut_response",
    "reset",
    "stall",
    "unavailable",
    "interim",
    "cut_headers",
)
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
)
_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Type: application/json\r\n"
    b"Content-Length: 58\r\n\r\n"
    b'{"error":{"code":"unavailable","message":"proxy says busy"}}'
)


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


class FaultProxy:
    """Start with ``with FaultProxy(upstream_port, script=[...], faults={...}) as proxy:``;
    point the client at ``proxy.url``. ``proxy.counts`` tells which actions happened;
    ``proxy.bytes_up`` / ``proxy.bytes_down`` count the bytes of the requests forwarded to the
    server and of the responses forwarded back (the benchmarks' bytes on the wire)."""

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
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

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(creader)
                if request is None:
                    return
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
            cwriter.close()
            if upstream is not None:
                upstream[1].close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        loop.run_until_complete(start())
        loop.run_forever()
        # Shut down: cancel the connections still open (stalled ones included).
        for task in asyncio.all_tasks(loop):
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None and self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
