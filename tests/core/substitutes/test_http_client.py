"""botwire's HTTP/1.1 client on ``_socket`` (``backends/_http_sync.py``) against ``http.client``,
the module it replaces: the same canned answers, over plain TCP and over TLS (a trustme CA),
must give the same status, headers, body and keep-alive decision.

What ``tests/client_http/transport`` already covers is not repeated here (real servers behind
nginx and tinyproxy, faults, malformed framing, reuse after a cut); this is the side-by-side
check of framing on well-formed answers: Content-Length, chunked with extensions and trailers,
EOF-delimited, ``Connection: close``, HEAD/204/304 without bodies, interim 1xx, repeated headers,
large bodies across TLS records, and reuse of one connection across all of them.

Documented differences (asserted, not hidden): ``http.client`` skips only ``100 Continue`` and
returns any other 1xx (e.g. ``103 Early Hints``) as the final answer, while botwire skips every
1xx as RFC 9110 15.2 says; with both Transfer-Encoding and Content-Length botwire closes the
connection afterwards (RFC 9112 6.1), ``http.client`` keeps it; an HTTP/1.0 answer with
``Connection: keep-alive`` is kept by ``http.client``, closed by botwire.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cannedpeer import CannedPeer

from botwire import Memory
from botwire.backends import _http as h
from botwire.backends import _proxy
from botwire.backends._http_sync import EXPECT_THRESHOLD, _Connection

Result = tuple[int, dict[str, str], bytes, bool]


def _cl(body: bytes, *extra: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    head = [f"{version} {status}", *extra, f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


BIG = bytes(range(256)) * 4096  # 1 MiB: many TLS records, many recv() calls
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5;name=value\r\nhello\r\n"
    b'6;a=b;quoted="x;y"\r\n world\r\n'
    b"000A\r\n0123456789\r\n"  # leading zeros, upper-case hex
    b"0;last=1\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n"
)
TINY_CHUNKS = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"1\r\n%c\r\n" % (65 + i % 26) for i in range(2000))
    + b"0\r\n\r\n"
)
BIG_CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (BIG[:70000], BIG[70000:]))
    + b"0\r\n\r\n"
)

# path -> (answer, the peer closes after it); the same answers for both clients.
CASES: dict[str, tuple[bytes, bool]] = {
    "/content-length": (_cl(b'{"a":1}', "Content-Type: application/json"), False),
    "/empty-200": (_cl(b""), False),
    "/chunked-ext-trailers": (CHUNKED, False),
    "/tiny-chunks": (TINY_CHUNKS, False),
    "/big-content-length": (_cl(BIG), False),
    "/big-chunked": (BIG_CHUNKED, False),
    "/connection-close": (_cl(b"bye", "Connection: close"), True),
    "/connection-close-chunked": (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nbye\r\n0\r\n\r\n",
        True,
    ),
    "/eof-delimited": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", True),
    "/http10": (_cl(b"old", version="HTTP/1.0"), True),
    "/http10-keep-alive-header": (_cl(b"old", "Connection: keep-alive", version="HTTP/1.0"), True),
    "/204": (b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", False),
    "/204-with-length-0": (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", False),
    "/304": (b'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "v1"\r\n\r\n', False),
    "/head": (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: x/y\r\n\r\n", False),
    "/100-then-200": (b"HTTP/1.1 100 Continue\r\n\r\n" + _cl(b"final"), False),
    "/100-100-then-404": (
        b"HTTP/1.1 100 Continue\r\nX-Skip: 1\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
        + _cl(b'{"error":{}}', status="404 Not Found"),
        False,
    ),
    "/repeated-headers": (
        _cl(b"x", "X-A: 1", "Set-Cookie: a=1", "x-a: 2", "Set-Cookie: b=2", "X-Empty:"),
        False,
    ),
    "/header-whitespace": (_cl(b"x", "X-Pad:   padded\t ", "X-Tight:tight"), False),
    "/latin1-header": (_cl(b"x", "X-Name: caf\xe9"), False),
    "/lf-only": (b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: 1\n\nok", False),
    "/no-reason": (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", False),
    "/500": (_cl(b"<html>oops</html>", status="500 Internal Server Error"), False),
}
KEEP_ALIVE = [p for p, (_, close) in CASES.items() if not close]
# Documented difference: http.client keeps an HTTP/1.0 connection that says "keep-alive";
# botwire reuses HTTP/1.1 connections only (it sends HTTP/1.1; a 1.0 peer is a proxy or an
# old server, where a stale reuse costs more than a new connection).
STDLIB_KEEPS_BOTWIRE_CLOSES = {"/http10-keep-alive-header"}


@pytest.fixture(scope="module", params=["plain", "tls"])
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CannedPeer]:
    directory = tmp_path_factory.mktemp("canned")
    with CannedPeer(CASES, tls=request.param == "tls", directory=directory) as p:
        yield p


@pytest.fixture
def trust(peer: CannedPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    """botwire's client trusts the peer's CA through SSL_CERT_FILE, as a user would set it."""
    if peer.ca_pem is not None:
        monkeypatch.setenv("SSL_CERT_FILE", str(peer.ca_pem))
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _method(path: str) -> str:
    return "HEAD" if path == "/head" else "GET"


class Stdlib:
    """``http.client`` on one connection."""

    def __init__(self, peer: CannedPeer) -> None:
        if peer.ca_pem is not None:
            self.conn: Any = http.client.HTTPSConnection(
                "127.0.0.1", peer.port, timeout=10, context=peer.client_context()
            )
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=10)

    def ask(self, path: str) -> Result:
        self.conn.request(_method(path), path, headers={"Accept": "application/json"})
        resp = self.conn.getresponse()
        body = resp.read()
        headers: dict[str, str] = {}
        for name in resp.headers:
            lower = name.lower()
            if lower not in headers:
                headers[lower] = ", ".join(v.strip(" \t") for v in resp.headers.get_all(name))
        return resp.status, headers, body, not resp.will_close

    def close(self) -> None:
        self.conn.close()


class Botwire:
    """botwire's ``_Connection`` on one connection, as ``HTTPStore`` drives it."""

    def __init__(self, peer: CannedPeer) -> None:
        self.target = h.Target.parse(peer.url)
        self.conn = _Connection(self.target, 10.0, None)

    def ask(self, path: str, body: bytes | None = None) -> Result:
        call = h.Call(
            "PUT" if body is not None else _method(path),
            path,
            {"Host": self.target.host_header, "Accept": "application/json"},
            body,
            "get",
        )
        return self.conn.exchange(call, 10.0)

    def close(self) -> None:
        self.conn.close()


def _both(peer: CannedPeer, path: str) -> tuple[Result, Result]:
    results = []
    for client_class in (Stdlib, Botwire):
        client = client_class(peer)
        try:
            results.append(client.ask(path))
        finally:
            client.close()
    return results[0], results[1]


@pytest.mark.usefixtures("trust")
@pytest.mark.parametrize("path", list(CASES))
def test_each_answer_reads_as_http_client_reads_it(peer: CannedPeer, path: str) -> None:
    stdlib, mine = _both(peer, path)
    assert mine[0] == stdlib[0]
    assert mine[2] == stdlib[2]
    assert mine[1] == stdlib[1]
    if path in STDLIB_KEEPS_BOTWIRE_CLOSES:
        assert (stdlib[3], mine[3]) == (True, False)
    else:
        assert mine[3] == stdlib[3], "keep-alive decision"
        assert mine[3] is (not CASES[path][1])  # reusable exactly when the peer keeps it open


@pytest.mark.usefixtures("trust")
def test_one_connection_carries_every_keep_alive_answer_in_turn(peer: CannedPeer) -> None:
    """Every keep-alive answer, back to back on ONE connection, twice over: each client reads
    each answer to its last byte, so the next one starts where it should."""
    sequence = KEEP_ALIVE * 2
    answers: dict[str, list[Result]] = {}
    for client_class in (Stdlib, Botwire):
        before = peer.connections
        client = client_class(peer)
        try:
            answers[client_class.__name__] = [client.ask(path) for path in sequence]
        finally:
            client.close()
        assert peer.connections == before + 1, client_class.__name__
    assert answers["Botwire"] == answers["Stdlib"]


DRIBBLED = [
    "/content-length",
    "/chunked-ext-trailers",
    "/100-100-then-404",
    "/repeated-headers",
    "/lf-only",
    "/head",
    "/304",
    "/connection-close-chunked",
    "/eof-delimited",
]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_answers_arriving_a_few_bytes_at_a_time_read_the_same(
    tls: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line, chunk size, CRLF and trailer split across reads (and TLS records)."""
    answers = {path: CASES[path] for path in DRIBBLED}
    with CannedPeer(answers, tls=tls, directory=tmp_path, piece=3) as peer:
        if peer.ca_pem is not None:
            monkeypatch.setenv("SSL_CERT_FILE", str(peer.ca_pem))
        for path in DRIBBLED:
            stdlib, mine = _both(peer, path)
            assert mine == stdlib, path
        keep = [p for p in DRIBBLED if not CASES[p][1]]
        client = Botwire(peer)
        try:  # back to back on one connection too
            assert [client.ask(p) for p in keep] == [_both(peer, p)[0] for p in keep]
        finally:
            client.close()


@pytest.mark.usefixtures("trust")
def test_an_idle_reused_connection_is_checked_then_used(peer: CannedPeer) -> None:
    """``idle_ok`` (one non-blocking peek, also through TLS) passes on a quiet connection."""
    client = Botwire(peer)
    try:
        # Not before the first exchange: a TLS 1.3 server's session tickets wait unread on a
        # new connection (only connections that answered once are ever pooled).
        for path in ("/chunked-ext-trailers", "/big-content-length", "/304", "/head"):
            assert client.ask(path)[3] is True
            assert client.conn.idle_ok() and not client.conn.buffer
    finally:
        client.close()


@pytest.mark.usefixtures("trust")
@pytest.mark.parametrize(
    ("answer", "stdlib_status"),
    [
        (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + _cl(b"final"), 103),
        (
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
            + _cl(b"final", status="201 Created"),
            102,
        ),
    ],
    ids=["103", "102-100"],
)
def test_every_interim_1xx_is_skipped_where_http_client_stops_at_it(
    answer: bytes, stdlib_status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented difference: http.client returns a 103 as if final (and then reads the real
    answer as the next response); botwire skips it and returns the final answer."""
    with CannedPeer({"/x": (answer, False)}, tls=True, directory=tmp_path) as peer:
        assert peer.ca_pem is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(peer.ca_pem))
        stdlib, mine = _both(peer, "/x")
    assert stdlib[0] == stdlib_status and stdlib[2] == b""
    assert mine[0] in (200, 201) and mine[2] == b"final" and mine[3] is True


@pytest.mark.usefixtures("trust")
def test_a_large_upload_waits_for_100_continue_and_arrives_whole(peer: CannedPeer) -> None:
    """Bodies above EXPECT_THRESHOLD go with ``Expect: 100-continue`` (over TLS too): the body
    follows the peer's 100, arrives byte for byte, and the answer after it is read as usual."""
    body = BIG[: EXPECT_THRESHOLD + 12345]
    client = Botwire(peer)
    try:
        before = len(peer.bodies)
        assert client.ask("/content-length", body) == (
            200,
            {"content-type": "application/json", "content-length": "7"},
            b'{"a":1}',
            True,
        )
        assert client.ask("/chunked-ext-trailers")[2] == b"hello world0123456789"
    finally:
        client.close()
    assert peer.bodies[before] == body
    assert b"expect: 100-continue" in peer.requests[before].lower()


def test_a_304_saying_chunked_has_no_body_where_http_client_waits_for_chunks() -> None:
    """Documented difference: a 304 never has a body (RFC 9110 15.4.5), whatever its headers;
    http.client reads chunks after a 304 that says chunked and fails (IncompleteRead)."""
    answer = b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
    with CannedPeer({"/x": (answer, True)}) as peer:  # closes: http.client fails at once
        with pytest.raises(http.client.IncompleteRead):
            _both(peer, "/x")
        client = Botwire(peer)
        try:
            assert client.ask("/x") == (304, {"transfer-encoding": "chunked"}, b"", True)
        finally:
            client.close()


def test_transfer_encoding_with_content_length_closes_where_http_client_keeps() -> None:
    """Documented difference: with both headers the body is chunked for both clients; botwire
    then closes the connection (RFC 9112 6.1: such a message may be an attack)."""
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
    answer += b"2\r\nok\r\n0\r\n\r\n"
    with CannedPeer({"/x": (answer, False)}) as peer:
        stdlib, mine = _both(peer, "/x")
    assert stdlib[:3] == mine[:3] and stdlib[2] == b"ok"
    assert stdlib[3] is True and mine[3] is False


@pytest.mark.usefixtures("trust")
def test_memory_reads_chunked_answers_with_trailers_over_tls(peer: CannedPeer) -> None:
    """The public API over the same framing: a chunked botwire answer split mid-JSON and
    mid-UTF-8, extensions and a trailer; the connection is then reused."""
    body = (
        '{"key":"k","value":{"text":"é🙂 chunked"},"version":3,"created_at":1.0,'
        '"updated_at":2.0,"expires_at":null}'
    ).encode()
    cut = body.index("🙂".encode()) + 2  # inside the emoji's UTF-8 bytes
    parts = [body[:7], body[7:cut], body[cut:]]
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer += b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    answer += b"0\r\nServer-Timing: db;dur=1\r\n\r\n"
    path = "/v1/namespaces/ns/keys/k"
    peer.answers[path] = (answer, False)
    before = peer.connections
    with Memory("ns", url=peer.url, timeout=5, retries=0) as m:
        for _ in range(3):
            assert m.get("k") == {"text": "é🙂 chunked"}
    assert peer.connections == before + 1


def test_the_tls_context_is_cached_per_trust_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One context per (SSL_CERT_FILE, SSL_CERT_DIR): building one costs ms per store."""
    with CannedPeer(CASES, tls=True, directory=tmp_path) as peer:
        monkeypatch.setenv("SSL_CERT_FILE", str(peer.ca_pem))
        first = _proxy.ssl_context()
        assert _proxy.ssl_context() is first
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "other.pem"))
        peer.ca.cert_pem.write_to_path(str(tmp_path / "other.pem"))
        assert _proxy.ssl_context() is not first
