"""HTTP/1.1 framing (RFC 9110/9112): interim 1xx answers are skipped, a response that cannot be
framed exactly discards its connection, and only a connection whose previous response was read
to its last byte is reused. Sync and async alike.

Before the fix, an unsolicited ``100 Continue`` was taken as the final answer and every later
request read the previous request's response: ``get('bob') -> {'owner': 'alice'}``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from client_http.transport.conftest import Client
from support.faultproxy import FaultProxy
from support.server import ServerProcess

from botwire import BotWireError


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def test_unsolicited_1xx_answers_are_skipped(
    server: ServerProcess, proxy: FaultProxy, ns: str, kind: str
) -> None:
    """Every response is preceded by ``100 Continue`` and ``103 Early Hints``: each call still
    gets its own answer, on a reused connection."""
    users = [f"user-{i}" for i in range(5)]
    with Client(kind, ns, url=proxy.url, timeout=5, retries=0) as m:
        proxy.set_script(["interim"] * 1000)
        for user in users:
            m.set(user, {"owner": user})
        assert m.append("log", "a", "b") == 2
        for _ in range(4):
            for user in reversed(users):
                assert m.get(user) == {"owner": user}
        assert m.get_many(users) == {u: {"owner": u} for u in users}
        assert m.pop("log") == "b"
        assert m.list() == sorted([*users, "log"])
    assert proxy.counts["interim"] == 29  # every exchange above had its 1xx


def test_a_response_cut_mid_headers_is_retried_on_a_new_connection(
    server: ServerProcess, proxy: FaultProxy, ns: str, kind: str
) -> None:
    with Client(kind, ns, url=proxy.url, timeout=5, retries=2) as m:
        m.set("alice", {"owner": "alice"})
        m.set("bob", {"owner": "bob"})
        proxy.set_script(["cut_headers"])
        assert m.get("bob") == {"owner": "bob"}
        proxy.set_script(["cut_headers"])
        assert m.incr("n", 2) == 2  # applied once although its first answer was cut
        for _ in range(3):
            assert m.get("alice") == {"owner": "alice"}
            assert m.get("n") == 2
    assert proxy.counts["cut_headers"] == 2


# -- a scripted peer, for responses no real server sends ----------------------------------------


def _entry(key: str, value: object) -> bytes:
    return json.dumps(
        {
            "key": key,
            "value": value,
            "version": 1,
            "created_at": 1.0,
            "updated_at": 1.0,
            "expires_at": None,
        }
    ).encode()


def _response(body: bytes, *extra: str, length: str | None = None) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", *extra]
    if length is not False:
        head.append(f"Content-Length: {length if length is not None else len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ScriptedPeer:
    """A loopback HTTP peer answering request N with ``script[N]`` (bytes; a trailing ``None``
    in a pair closes the connection after it). Counts connections and requests."""

    def __init__(self, script: list[tuple[bytes, bool]]) -> None:
        self.script = list(script)
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._conn, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _conn(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(10)
            while True:
                try:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                except OSError:
                    return
                head, _, buf = buf.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                        while len(buf) < n:
                            buf += conn.recv(65536)
                        buf = buf[n:]
                self.requests.append(head.split(b"\r\n")[0])
                if not self.script:
                    return
                answer, close = self.script.pop(0)
                conn.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for t in self._threads:
            t.join(5)


@pytest.fixture
def peer_factory() -> Iterator[object]:
    peers: list[ScriptedPeer] = []

    def make(script: list[tuple[bytes, bool]]) -> ScriptedPeer:
        peers.append(ScriptedPeer(script))
        return peers[-1]

    yield make
    for p in peers:
        p.close()


def test_bytes_beyond_the_framed_response_discard_the_connection(
    peer_factory: object, kind: str
) -> None:
    """The answer to ``get('alice')`` is followed by a smuggled second response carrying bob's
    key: the client must not read it as the answer to its next request."""
    smuggled = _response(_entry("bob", {"owner": "alice"}))
    peer = peer_factory(  # type: ignore[operator]
        [
            (_response(_entry("alice", {"owner": "alice"})) + smuggled, False),
            (_response(_entry("bob", {"owner": "bob"})), False),
        ]
    )
    with Client(kind, "ns", url=peer.url, timeout=3, retries=0) as m:
        assert m.get("alice") == {"owner": "alice"}
        assert m.get("bob") == {"owner": "bob"}
    assert peer.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        _response(_entry("k", 1), length="5, 7"),  # conflicting Content-Length values
        _response(_entry("k", 1), length="-1"),
        _response(_entry("k", 1), length="1e3"),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ],
    ids=[
        "cl-conflict",
        "cl-negative",
        "cl-float",
        "101",
        "status-4-digits",
        "no-colon",
        "space-before-colon",
        "chunk-no-crlf",
        "chunk-size-not-hex",
    ],
)
def test_a_response_that_cannot_be_framed_is_an_error_never_a_value(
    peer_factory: object, kind: str, answer: bytes
) -> None:
    peer = peer_factory([(answer, False)])  # type: ignore[operator]
    with Client(kind, "ns", url=peer.url, timeout=3, retries=0) as m, pytest.raises(BotWireError):
        m.get("k")


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (_response(_entry("k", 1), "Connection: close"), False),
        (_response(_entry("k", 1), length=False), False),  # delimited by the close
        (
            b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s"
            % (len(_entry("k", 1)), _entry("k", 1)),
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(_entry("k", 1)), _entry("k", 1)),
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(_entry("k", 1)), _entry("k", 1)),
            True,
        ),
        (_response(_entry("k", 1)), True),
    ],
    ids=["connection-close", "eof-delimited", "http-1.0", "te-and-cl", "chunked-trailer", "plain"],
)
def test_only_a_fully_read_keep_alive_response_is_reused(
    peer_factory: object, kind: str, answer: bytes, reused: bool
) -> None:
    """The peer keeps every connection open (except after a body delimited by the close), so
    a second connection is the client's own decision, not a reaction to the peer closing."""
    if kind == "async" and answer.count(b"Content-Length") and b"chunked" in answer:
        reused = True  # h11 reuses after TE + CL (RFC 9112 6.1 only obliges servers to close)
    eof_delimited = b"Content-Length" not in answer and b"chunked" not in answer
    peer = peer_factory([(answer, eof_delimited), (_response(_entry("k", 2)), False)])  # type: ignore[operator]
    with Client(kind, "ns", url=peer.url, timeout=3, retries=0) as m:
        assert m.get("k") == 1
        assert m.get("k") == 2
    assert peer.connections == (1 if reused else 2)
