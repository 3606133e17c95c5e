"""Request bodies: strict JSON (400) and size limits enforced before reading (413)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from server.srv_helpers import key_url
from starlette.requests import Request
from support.server import ServerProcess, running_server

from botwire import InvalidArgument, ValueTooLarge
from botwire_server.api._http import read_body

BAD_BODIES = [
    b"{",
    b"not json",
    b'{"value": NaN}',
    b'{"value": Infinity}',
    b'{"value": -Infinity}',
    b'{"value": 1e400}',
    b'{"value": "\xff"}',
    b"\xef\xbb\xbf\xff\xfe",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"value": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b"[1]",
    b'{"value": "\\ud800"}',
    b'{"value": {"a": ["x\\udfffy"]}}',
    b'{"value": {"\\uDC00": 1}}',
    b'"just a string"',
    b"",
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=lambda b: repr(b[:20]))
def test_malformed_bodies_are_400(http: httpx.Client, ns: str, body: bytes) -> None:
    for method, url in (
        ("PUT", key_url(ns, "k")),
        ("PATCH", key_url(ns, "k")),
        ("POST", f"/v1/namespaces/{ns}/batch"),
        ("PUT", f"/memory/{ns}/k"),
    ):
        r = http.request(method, url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (method, url, r.text[:200])
        assert r.json()["error"]["code"] == "invalid_argument"
    assert http.get(key_url(ns, "k")).status_code == 404


def test_nested_but_reasonable_values_are_fine(http: httpx.Client, ns: str) -> None:
    value: object = "leaf"
    for _ in range(200):
        value = [value]
    assert http.put(key_url(ns, "deep"), json={"value": value}).status_code == 200
    assert http.get(key_url(ns, "deep")).json()["value"] == value


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with running_server(
        "--max-value-bytes", "1000", database=tmp_path_factory.mktemp("small") / "b.db"
    ) as s:
        yield s


def test_value_over_limit_is_413(small: ServerProcess, ns: str) -> None:
    with httpx.Client(base_url=small.url) as http:
        ok = http.put(key_url(ns, "k"), json={"value": "x" * 990})
        assert ok.status_code == 200
        r = http.put(key_url(ns, "k"), json={"value": "x" * 1001})
        assert r.status_code == 413
        err = r.json()["error"]
        assert err["code"] == "value_too_large"
        assert err["key"] == "k"
        item = http.patch(key_url(ns, "l"), json={"append": ["y" * 1001]})
        assert item.status_code == 413


def _read_reply(sock: socket.socket) -> str:
    """One whole HTTP response (head + Content-Length body): a single recv() may return only
    the head when the body travels in a later segment."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_huge_body_refused_from_content_length_before_reading(
    small: ServerProcess, ns: str
) -> None:
    # Announce 50 MB but send only the headers: the server must answer without waiting.
    with socket.create_connection((small.host, small.port), timeout=5) as sock:
        sock.sendall(
            f"PUT {key_url(ns, 'k')} HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 50000000\r\n\r\n".encode()
        )
        sock.sendall(b'{"value": "' + b"x" * 1000)
        reply = _read_reply(sock)
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "value_too_large" in reply


def test_huge_chunked_body_refused_while_streaming(small: ServerProcess, ns: str) -> None:
    # A chunked body has no Content-Length: the server counts while it streams, answers 413
    # once past the limit, and never needs the rest (the body is never finished here).
    with socket.create_connection((small.host, small.port), timeout=5) as sock:
        sock.sendall(
            f"PUT {key_url(ns, 'k')} HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 16384
        for _ in range(10):  # 160 KB, past the 2 x 1000 + 64 KiB single-body cap
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        reply = _read_reply(sock)
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    with httpx.Client(base_url=small.url) as http:
        assert http.get(key_url(ns, "k")).status_code == 404


def test_batch_allows_a_larger_body(small: ServerProcess, ns: str) -> None:
    ops = [{"op": "set", "key": f"k{i}", "value": "v" * 900} for i in range(8)]
    with httpx.Client(base_url=small.url) as http:
        r = http.post(f"/v1/namespaces/{ns}/batch", json={"ops": ops, "atomic": True})
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == 8
        one = http.put(
            key_url(ns, "single"),
            content=b'{"value": "' + b"v" * 9000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert one.status_code == 413


def test_escaped_surrogate_pairs_are_text(http: httpx.Client, ns: str) -> None:
    body = b'{"value": "\\ud83d\\ude00 \\u00e9"}'
    assert (
        http.put(
            key_url(ns, "emoji"), content=body, headers={"Content-Type": "application/json"}
        ).status_code
        == 200
    )
    assert http.get(key_url(ns, "emoji")).json()["value"] == "\U0001f600 \u00e9"


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        # a check's expected version is "version": "if_version" turned it into "must be absent"
        ("POST", "batch", {"ops": [{"op": "check", "key": "a", "if_version": 7}]}, "'version'"),
        (
            "POST",
            "batch",
            {"ops": [{"op": "set", "key": "a", "value": 2, "version": 9}]},
            "if_version",
        ),
        ("POST", "batch", {"ops": [{"op": "set", "key": "a", "value": 3, "ttlx": 5}]}, "'ttlx'"),
        ("POST", "batch", {"ops": [{"op": "delete", "key": "a", "ttl": 5}]}, "'ttl'"),
        ("PUT", "keys/a", {"value": 4, "tll": 5}, "'tll'"),  # a misspelt ttl: never expires
        ("PATCH", "keys/l", {"append": [1], "max_length": 2}, "'max_length'"),
        ("PATCH", "keys/n", {"incr": 1, "ttl": 5}, "'ttl'"),
    ],
)
def test_a_field_an_op_does_not_take_is_refused_not_ignored(
    http: httpx.Client, ns: str, method: str, path: str, body: object, named: str
) -> None:
    """Unknown fields were ignored: the guard a caller wrote under the wrong name did not
    guard, and the write went through without it. Now 400 naming the field, nothing written."""
    answer = http.request(method, f"/v1/namespaces/{ns}/{path}", json=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "unknown field" in message and named in message, message
    assert http.get(f"/v1/namespaces/{ns}/keys").json()["keys"] == []  # nothing was written


def _request(messages: list[dict[str, object]], headers: list[tuple[bytes, bytes]]) -> Request:
    """A request whose body arrives as ``messages`` (what the server's protocol delivers)."""
    pending = list(messages)

    async def receive() -> dict[str, object]:
        return pending.pop(0)

    return Request({"type": "http", "method": "PUT", "headers": headers}, receive)


def test_a_body_in_several_chunks_is_read_whole() -> None:
    parts = [b'{"value": ', b'"a b c"', b"}"]
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": p, "more_body": True} for p in parts
    ]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    body = asyncio.run(read_body(_request(messages, []), 1000, "ns", "k"))
    assert body == b"".join(parts)


def test_a_client_gone_mid_body_is_a_400_naming_it() -> None:
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": b'{"value": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(InvalidArgument, match="closed the connection before sending the whole"):
        asyncio.run(read_body(_request(messages, []), 1000, "ns", "k"))


def test_chunks_over_the_limit_are_refused_while_they_arrive() -> None:
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        # never read: the refusal comes first
    ]
    with pytest.raises(ValueTooLarge, match="limit of 1000 bytes") as refused:
        asyncio.run(read_body(_request(messages, []), 1000, "ns", "k"))
    assert refused.value.namespace == "ns"


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    request = _request([], [(b"content-length", b"5000")])  # no message to read
    with pytest.raises(ValueTooLarge, match="5000 bytes"):
        asyncio.run(read_body(request, 1000, "ns", "k"))
