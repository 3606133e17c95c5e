"""The HTTP/1.1 protocol uvicorn runs: its httptools protocol with two limits it lacks.

uvicorn's httptools protocol accepts a request head (request line + headers) of any size, and
waits for it forever: one client could make the server buffer gigabytes of header, or hold a
connection open by sending a header byte now and then (slowloris), and a client that never
reads its answer pins the answer's bytes in memory for as long as it likes. This subclass

- answers ``431`` and closes when the head grows past ``MAX_HEAD_BYTES`` (64 KiB), and
- answers ``408`` and closes when a head is not complete ``BOTWIRE_HEADER_TIMEOUT`` seconds
  (default 10) after the connection opened or the previous response was sent, and
- answers ``408`` and closes when a request's body is not complete ``BOTWIRE_BODY_TIMEOUT``
  seconds (default 60) after its head (a client dribbling a body would otherwise hold a
  connection, and a route waiting for it, forever). Once the app has started its response the
  deadline no longer applies: the response is never interrupted, and
- aborts the connection (freeing the unsent answer) when the client has not read enough of
  an answer to let the server write again for ``BOTWIRE_WRITE_TIMEOUT`` seconds (default 30).

It also writes an answer's head and body with one ``send``: uvicorn writes them separately
(two system calls, two TCP segments, and two reads for the client), so the protocol's transport
is a :class:`CoalescingTransport`, which holds a head until its body is written (or the turn of
the event loop ends) and sends both together (issue 22). Holding every write to the end of the
turn instead measured faster on the no-op route (its answers left in bursts) but no faster on
writes, and it delayed every answer by a turn.

httptools is a dependency of the package (so is uvloop, where it has wheels). Where it cannot be
installed, uvicorn's h11 protocol is used with the same head cap (h11 refuses a larger head with
a 400); it has no head deadline.

Example::

    uvicorn.run(app, **http_protocol_options())
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from typing import Any

__all__ = [
    "MAX_HEAD_BYTES",
    "CoalescingTransport",
    "body_timeout",
    "head_timeout",
    "http_protocol_options",
    "write_timeout",
]

MAX_HEAD_BYTES = 64 * 1024


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default


def head_timeout() -> float:
    return _seconds("BOTWIRE_HEADER_TIMEOUT", 10.0)


def body_timeout() -> float:
    return _seconds("BOTWIRE_BODY_TIMEOUT", 60.0)


def write_timeout() -> float:
    return _seconds("BOTWIRE_WRITE_TIMEOUT", 30.0)


def _response(status: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


_TOO_LARGE = _response(
    b"431 Request Header Fields Too Large",
    "header_too_large",
    f"botwire: the request head is over {MAX_HEAD_BYTES} bytes.",
)
_TIMEOUT = _response(
    b"408 Request Timeout", "request_timeout", "botwire: the request head did not arrive in time."
)
_BODY_TIMEOUT = _response(
    b"408 Request Timeout", "request_timeout", "botwire: the request body did not arrive in time."
)


class CoalescingTransport(asyncio.Transport):
    """A transport that holds a write until the next one, then hands both to the transport it
    wraps as one ``write`` (an answer's head and body, see module); a write that nothing
    follows in the same turn of the event loop leaves when the turn ends. Everything else is
    the wrapped transport's. ``close`` sends what is held first; ``abort`` drops it, as the wrapped
    transport drops its own unsent bytes.

    Example (what the bounded protocol does with the connection's transport)::

        transport = CoalescingTransport(transport, asyncio.get_running_loop())
        transport.write(head)   # held
        transport.write(body)   # one send of head + body, now
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._held:  # a body after its head: both leave now, in one write
            self._held.append(bytes(data))
            self.flush()
            return
        self._held.append(bytes(data))
        self._loop.call_soon(self.flush)  # a head alone (HEAD, 100 Continue) leaves at the turn

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand what is held to the wrapped transport now."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        if not self._inner.is_closing():  # closed meanwhile (the client left): nobody reads it
            self._inner.write(data)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(len(d) for d in self._held)

    def close(self) -> None:
        if not self._inner.is_closing():
            self.flush()
        self._held = []
        self._inner.close()

    def abort(self) -> None:
        self._held = []
        self._inner.abort()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


def _bounded_httptools() -> type[Any] | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        return None

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _in_head = True
        _head_bytes = 0
        _head_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None
        _timeout = head_timeout()
        _body_timeout = body_timeout()
        _write_timer: asyncio.TimerHandle | None = None
        _write_timeout = write_timeout()

        # uvicorn's own protocol narrows the transport the same way (asyncio's base takes any
        # BaseTransport; an HTTP connection is always a Transport).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self._disarm_body()
            self._disarm_write()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            # the client is not reading what was written: it has this long to start again
            super().pause_writing()
            if self._write_timer is None:
                self._write_timer = self.loop.call_later(self._write_timeout, self._write_timed_out)

        def resume_writing(self) -> None:
            self._disarm_write()
            super().resume_writing()

        def _disarm_write(self) -> None:
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None

        def _write_timed_out(self) -> None:
            self._write_timer = None
            if not self.transport.is_closing():
                # SO_LINGER 0: the kernel drops its send buffer too and resets the connection,
                # instead of trickling megabytes to a client that reads 4 KB at a time
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                self.transport.abort()  # drops the unsent bytes: the memory is freed now

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # counted after parsing: a chunk that completes the head (with its body) is fine
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(_TOO_LARGE)

        def on_message_begin(self) -> None:
            self._in_head, self._head_bytes = True, 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            super().on_headers_complete()
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_timed_out)

        def on_message_complete(self) -> None:
            self._disarm_body()
            super().on_message_complete()

        def _disarm_body(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _body_timed_out(self) -> None:
            self._body_timer = None
            cycle = self.cycle
            if cycle is not None and not cycle.response_started and not self.transport.is_closing():
                self._refuse(_BODY_TIMEOUT)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # the next head's clock starts now, unless a pipelined request is already complete
            if not self.transport.is_closing() and (
                self.cycle is None or self.cycle.response_complete
            ):
                if not self._in_head:
                    self._in_head, self._head_bytes = True, 0
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(self._timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                self._refuse(_TIMEOUT if self._head_bytes else b"")

        def _refuse(self, response: bytes) -> None:
            self._disarm()
            self._disarm_body()
            if response:
                self.transport.write(response)
            self.transport.close()

    return BoundedHttpToolsProtocol


def http_protocol_options() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` selecting the bounded protocol."""
    protocol = _bounded_httptools()
    if protocol is not None:
        return {"http": protocol}
    return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
