"""The server writes an answer's head and body with one ``send`` (``_protocol.CoalescingTransport``,
issue 22): uvicorn writes them separately, which cost a system call and a TCP segment more per
answer. Checked on the transport itself (what reaches the socket, write by write) and on a real
server through raw sockets: keep-alive, pipelining, ``HEAD``, ``Expect: 100-continue``, a large
answer and ``Connection: close`` still behave."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from support.server import ServerProcess

from botwire_server._protocol import CoalescingTransport


class Recording(asyncio.Transport):
    """A transport that records each ``write`` (the socket's sends)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def _one_iteration() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_a_head_leaves_with_its_body_and_alone_at_the_end_of_the_turn() -> None:
    async def main() -> Recording:
        inner = Recording()
        t = CoalescingTransport(inner, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"")  # an empty body chunk adds nothing
        assert inner.writes == [] and t.get_write_buffer_size() == 38  # the head is held
        t.write(b"{}")  # its body: both leave now, together
        assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        t.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")  # a HEAD's answer: no body
        assert len(inner.writes) == 1
        await _one_iteration()  # it leaves when the turn ends
        return inner

    inner = asyncio.run(main())
    assert inner.writes[1:] == [b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"]


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def main() -> tuple[Recording, Recording]:
        loop = asyncio.get_running_loop()
        closing, aborting = Recording(), Recording()
        a = CoalescingTransport(closing, loop)
        a.write(b"last answer")
        a.close()
        b = CoalescingTransport(aborting, loop)
        b.write(b"unsent")
        b.abort()
        await _one_iteration()  # the scheduled flushes find nothing
        return closing, aborting

    closing, aborting = asyncio.run(main())
    assert closing.writes == [b"last answer"] and closing.closed
    assert aborting.writes == [] and aborting.aborted


def test_nothing_is_written_to_a_transport_closed_meanwhile() -> None:
    async def main() -> Recording:
        inner = Recording()
        t = CoalescingTransport(inner, asyncio.get_running_loop())
        t.write(b"held")
        inner.closed = True  # the client went away before the iteration ended
        await _one_iteration()
        return inner

    assert asyncio.run(main()).writes == []


def test_the_server_protocol_answers_with_one_write() -> None:
    """uvicorn's protocol as the server runs it (``http_protocol_options``), on a recording
    transport: the head and the body of an answer reach the socket in one write."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from botwire_server._protocol import http_protocol_options

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> Recording:
        config = Config(app=app, lifespan="off", log_level="warning")
        config.load()
        protocol = http_protocol_options()["http"](
            config=config, server_state=ServerState(), app_state={}
        )
        inner = Recording()
        protocol.connection_made(inner)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for _ in range(20):
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return inner

    writes = asyncio.run(main()).writes
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n{}")


# -- a real server ---------------------------------------------------------------------------


def _recv_until(sock: socket.socket, count: int, marker: bytes = b"\r\n\r\n") -> bytes:
    """Read until ``count`` complete answers (by content-length) are in."""
    data = b""
    while True:
        answers, rest = 0, data
        while marker in rest:
            head, rest = rest.split(marker, 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if b" 100 " in head.split(b"\r\n")[0] or b"HEAD-REQ" in head:
                length = 0
            if len(rest) < length:
                break
            rest = rest[length:]
            answers += 1
        if answers >= count:
            return data
        chunk = sock.recv(1 << 20)
        if not chunk:
            return data
        data += chunk


def _request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def test_keep_alive_and_pipelined_answers(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        put = _request(
            "PUT",
            "/v1/namespaces/cw/keys/a",
            json.dumps({"value": "x"}).encode(),
            "Content-Type: application/json\r\n",
        )
        s.sendall(put)
        first = _recv_until(s, 1)
        assert first.startswith(b"HTTP/1.1 200") and b'{"version":' in first
        # two requests in one segment: two complete answers, in order
        s.sendall(_request("GET", "/v1/namespaces/cw/keys/a") + _request("GET", "/healthz"))
        both = _recv_until(s, 2)
        assert both.count(b"HTTP/1.1 200") == 2
        assert both.index(b'"value":"x"') < both.rindex(b"HTTP/1.1 200")


def test_head_and_expect_continue(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        # uvicorn writes no body for HEAD (whatever the status): the head alone leaves
        s.sendall(b"HEAD /v1/namespaces/cw/keys/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n")
        # the connection still serves the next request (the HEAD's head was not held back)
        s.sendall(_request("GET", "/healthz"))
        assert _recv_until(s, 1).startswith(b"HTTP/1.1 200")
        body = json.dumps({"value": 1}).encode()
        s.sendall(
            _request(
                "PUT",
                "/v1/namespaces/cw/keys/c",
                b"",
                "Content-Type: application/json\r\nExpect: 100-continue\r\n",
            ).replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
        )
        cont = s.recv(65536)
        assert cont.startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        rest = cont[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while not rest.endswith(b"}"):
            rest += s.recv(65536)
        assert rest.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("size", [10, 90_000])  # the server's --max-value-bytes is 100,000
def test_large_answers_and_connection_close(server: ServerProcess, size: int) -> None:
    value = "v" * size
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        body = json.dumps({"value": value}).encode()
        s.sendall(
            _request(
                "PUT",
                f"/v1/namespaces/cw/keys/big{size}",
                body,
                "Content-Type: application/json\r\n",
            )
        )
        assert _recv_until(s, 1).startswith(b"HTTP/1.1 200")
        s.sendall(
            _request("GET", f"/v1/namespaces/cw/keys/big{size}", b"", "Connection: close\r\n")
        )
        data = b""
        while chunk := s.recv(1 << 20):  # the server closes once the answer is out
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload)["value"] == value
