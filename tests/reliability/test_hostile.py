"""Hostile input against a real server: broken and oversized requests, percent-encoding tricks,
huge heads, slow clients, and property tests of keys, namespaces and values over HTTP. Every
request gets a clear 4xx (or the connection is cut) and the server stays up (``/healthz``).

The server runs with ``BOTWIRE_HEADER_TIMEOUT=2`` and ``BOTWIRE_BODY_TIMEOUT=2`` so the
slow-client tests are short."""

from __future__ import annotations

import contextlib
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.helpers import Figures
from support.server import ServerProcess, running_server

from botwire import InvalidNamespace, Memory
from botwire._wire import key_path

HEAD_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        "--max-value-bytes",
        "10000",
        "--no-access-log",
        database=tmp_path_factory.mktemp("hostile") / "h.db",
        env={
            "BOTWIRE_HEADER_TIMEOUT": str(HEAD_TIMEOUT),
            "BOTWIRE_BODY_TIMEOUT": str(BODY_TIMEOUT),
        },
    ) as s:
        yield s


def _raw(port: int, data: bytes, timeout: float = 10.0) -> int | None:
    """Send ``data`` and return the response status, or None when the server cut the
    connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # cut while still sending: the answer is below
            s.sendall(data)
        out = b""
        while b"\r\n" not in out:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return int(m.group(1)) if m else None


def _healthy(server: ServerProcess) -> None:
    assert server.alive, server.log()[-3000:]
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def _req(method: str, target: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    head = (
        method.encode() + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    )
    if body or method in ("PUT", "POST", "PATCH"):
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


def _deep(n: int) -> bytes:
    return b'{"value":' + b"[" * n + b"]" * n + b"}"


CASES: dict[str, tuple[bytes, set[int | None]]] = {
    "invalid utf-8 in path": (_req("GET", b"/v1/namespaces/ns/keys/\xff\xfe"), {400}),
    "invalid utf-8 in namespace": (_req("GET", b"/v1/namespaces/n\xffs/keys/a"), {400}),
    "percent-encoded invalid utf-8": (_req("GET", b"/v1/namespaces/ns/keys/%ff%fe"), {400}),
    "invalid utf-8 in body": (_req("PUT", b"/v1/namespaces/ns/keys/a", b'{"value":"\xff"}'), {400}),
    "invalid utf-8 in a JSON escape": (
        _req("PUT", b"/v1/namespaces/ns/keys/a", b'{"value":"\\ud800"}'),
        {200, 400},
    ),
    "%00 in key": (_req("GET", b"/v1/namespaces/ns/keys/a%00b"), {400}),
    "%00 in namespace": (_req("GET", b"/v1/namespaces/n%00s/keys/a"), {400}),
    "%2F in namespace": (_req("GET", b"/v1/namespaces/a%2Fb/keys/a"), {400, 404}),
    "%2e%2e namespace": (_req("GET", b"/v1/namespaces/%2e%2e/keys/a"), {400}),
    "raw ../ in path": (_req("GET", b"/v1/namespaces/ns/keys/../../../etc/passwd"), {404}),
    "raw ../ out of namespace": (_req("GET", b"/v1/namespaces/../../etc/keys/a"), {400, 404}),
    "double-encoded slash": (_req("GET", b"/v1/namespaces/ns%252F..%252Fx/keys/a"), {400}),
    "overlong utf-8 slash": (_req("GET", b"/v1/namespaces/ns/keys/%c0%af"), {400}),
    "key over 1024 bytes": (_req("GET", b"/v1/namespaces/ns/keys/" + b"k" * 1025), {400}),
    "namespace over 128": (_req("GET", b"/v1/namespaces/" + b"n" * 129 + b"/keys/a"), {400}),
    "huge Content-Length": (
        b"PUT /v1/namespaces/ns/keys/a HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: 999999999999\r\n"
        b'Connection: close\r\n\r\n{"value":',
        {413},
    ),
    "negative Content-Length": (
        b"PUT /v1/namespaces/ns/keys/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
        {400},
    ),
    "two Content-Lengths": (
        b"PUT /v1/namespaces/ns/keys/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
        b"Content-Length: 30\r\nConnection: close\r\n\r\n123",
        {400},
    ),
    "body over the limit": (
        _req("PUT", b"/v1/namespaces/ns/keys/a", b'{"value":"' + b"x" * 200_000 + b'"}'),
        {413, None},
    ),
    "deep JSON nesting": (_req("PUT", b"/v1/namespaces/ns/keys/a", _deep(5000)), {400, 413}),
    "deep JSON in a batch": (
        _req(
            "POST",
            b"/v1/namespaces/ns/batch",
            b'{"ops":[{"op":"set","key":"a","value":' + b"[" * 3000 + b"]" * 3000 + b"}]}",
        ),
        {400, 413},
    ),
    "deep JSON in an append": (
        _req(
            "PATCH",
            b"/v1/namespaces/ns/keys/l",
            b'{"append":[' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"]}",
        ),
        {400, 413},
    ),
    "NaN literal": (_req("PUT", b"/v1/namespaces/ns/keys/a", b'{"value":NaN}'), {400}),
    "huge number": (_req("PUT", b"/v1/namespaces/ns/keys/a", b'{"value":1e999}'), {400}),
    "not JSON": (_req("PUT", b"/v1/namespaces/ns/keys/a", b"\x00\x01\x02"), {400}),
    "JSON array body": (_req("PUT", b"/v1/namespaces/ns/keys/a", b"[1,2]"), {400}),
    "huge header (1 MiB)": (
        _req("GET", b"/healthz", extra=b"X-Big: " + b"a" * (1 << 20) + b"\r\n"),
        {400, 431, None},
    ),
    "20000 headers": (
        _req("GET", b"/healthz", extra=b"".join(b"X-%d: 1\r\n" % i for i in range(20000))),
        {400, 431, None},
    ),
    "huge request line": (
        _req("GET", b"/v1/namespaces/ns/keys/" + b"k" * (1 << 20)),
        {400, 414, 431, None},
    ),
    "garbage request line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400, None}),
    "HTTP/0.9 request line": (b"GET /healthz\r\n\r\n", {200, 400, None}),  # harmless
    "unknown method": (_req("BREW", b"/v1/namespaces/ns/keys/a"), {400, 405, 501}),
}


def test_hostile_requests_get_a_4xx_or_are_cut(server: ServerProcess, record_property: Any) -> None:
    wrong: list[str] = []
    outcomes: dict[str, int | None] = {}
    for name, (data, expected) in CASES.items():
        status = _raw(server.port, data)
        outcomes[name] = status
        if status not in expected:
            wrong.append(f"{name}: {status}, expected {expected}")
        _healthy(server)  # the server is still up after every case
    # a value written by a refused request was not stored
    assert httpx.get(f"{server.url}{key_path('ns', 'a')}").status_code in (200, 404)
    log = server.log()
    Figures(
        "hostile/raw-requests",
        attempted=len(CASES),
        acknowledged=len(CASES) - len(wrong),
        extra={
            "cut_off": sum(1 for s in outcomes.values() if s is None),
            "wrong": len(wrong),
            "server_5xx": sum(1 for s in outcomes.values() if s is not None and s >= 500),
        },
    ).record(record_property)
    assert not wrong, "\n".join(wrong)
    assert "Traceback" not in log, log[-4000:]


def test_client_gone_mid_body_is_not_a_server_error(server: ServerProcess) -> None:
    """A client that promises a body and hangs up half-way is the client's failure: no 5xx in
    the metrics and no error traceback in the log."""
    before, seen = _five_xx(server), _requests(server)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(
                b"PUT /v1/namespaces/ns/keys/gone HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                b'{"value": "'
            )
    deadline = time.monotonic() + 10
    while _requests(server) < seen + 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # polls the server's own count of the handled requests
    assert _requests(server) >= seen + 5
    _healthy(server)
    assert _five_xx(server) == before
    assert "Traceback" not in server.log()
    assert httpx.get(f"{server.url}{key_path('ns', 'gone')}").status_code == 404


def _counted(server: ServerProcess, *parts: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("botwire_requests_total{") and all(p in line for p in parts)
    )


def _five_xx(server: ServerProcess) -> float:
    return _counted(server, 'status="5')


def _requests(server: ServerProcess) -> float:
    return _counted(server, 'method="PUT"')


def test_percent_encoding_tricks_round_trip_as_literal_keys(server: ServerProcess) -> None:
    """``%2e%2e`` is the key "..", ``%252F`` the key "%2F": decoded exactly once, never a path."""
    with httpx.Client(base_url=server.url) as c:
        raw = {
            b"%2e%2e": "..",
            b"%2E": ".",
            b"%252F": "%2F",
            b"a%2Fb": "a/b",
            b"%25": "%",
            b"%2e%2e%2f%2e%2e%2fetc": "../../etc",
            b"%3F%23": "?#",
        }
        for enc, key in raw.items():
            url = b"/v1/namespaces/pct/keys/" + enc
            put = c.put(url.decode(), json={"value": key})
            assert put.status_code == 200, (enc, put.text)
            got = c.get(key_path("pct", key)).json()
            assert got["key"] == key and got["value"] == key, (enc, got)
        listed = {k["key"] for k in c.get("/v1/namespaces/pct/keys").json()["keys"]}
        assert listed == set(raw.values())


def test_slow_clients_are_cut_off_and_others_are_served(
    server: ServerProcess, record_property: Any
) -> None:
    """Eight slowloris connections dribble header bytes; meanwhile normal requests are served,
    and every slow one is cut (408 or close) within the head timeout plus a margin."""
    n = 8
    results: list[tuple[int | None, float]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def slowloris() -> None:
        started = time.monotonic()
        status: int | None = None
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
                for i in range(200):
                    if stop.wait(0.1):
                        break
                    s.sendall(b"X-%d: y\r\n" % i)
            except OSError:
                pass
            try:
                s.settimeout(10)
                m = re.match(rb"HTTP/1\.1 (\d{3})", s.recv(200))
                status = int(m.group(1)) if m else None
            except OSError:
                pass
        with lock:
            results.append((status, time.monotonic() - started))

    threads = [threading.Thread(target=slowloris) for _ in range(n)]
    for t in threads:
        t.start()
    served = 0
    try:
        with httpx.Client(base_url=server.url, timeout=5) as c:
            for i in range(20):
                assert c.put(key_path("slow", f"k{i}"), json={"value": i}).status_code == 200
                assert c.get(key_path("slow", f"k{i}")).json()["value"] == i
                served += 2
    finally:
        for t in threads:
            t.join(HEAD_TIMEOUT + 15)
        stop.set()
    Figures(
        "hostile/slowloris",
        attempted=n,
        acknowledged=served,
        extra={
            "slow_connections": n,
            "cut": sum(1 for s, _ in results if s in (408, None)),
            "max_seconds_to_cut": round(max(d for _, d in results), 2),
        },
    ).record(record_property)
    assert len(results) == n
    assert all(s in (408, None) for s, _ in results), results
    assert all(d < HEAD_TIMEOUT + 5 for _, d in results), results  # not the 20 s of dribbling
    _healthy(server)


def _put_head(path: str, length: int) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_stalled_body_is_cut_with_408_and_nothing_is_stored(server: ServerProcess) -> None:
    """The head arrives, the body never finishes: 408 after the body deadline, the connection
    closed, the route never runs (nothing stored); a slow body that completes in time is
    served; the server stays up."""
    path = key_path("slow-body", "k")
    body = b'{"value": "' + b"x" * 80 + b'"}'
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=BODY_TIMEOUT + 10) as s:
        s.sendall(_put_head(path, len(body)) + body[:10])  # ... and then nothing
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and b"body" in answer
    assert BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 5, waited  # the deadline, not forever
    with httpx.Client(base_url=server.url, timeout=5) as c:
        assert c.get(path).status_code == 404  # the half-sent PUT was never applied
        # A body dribbled in three parts well inside the deadline is served normally.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(_put_head(path, len(body)))
            for part in (body[:30], body[30:60], body[60:]):
                time.sleep(BODY_TIMEOUT / 6)
                s.sendall(part)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        assert c.get(path).json()["value"] == "x" * 80
    _healthy(server)


# -- property tests over the HTTP path ---------------------------------------------------------

KEYS = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=60,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal with the same JSON types (1 is not 1.0 is not True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def prop_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    if request.param == "sqlite":
        database: str | Path = tmp_path_factory.mktemp("prop") / "p.db"
    else:
        from support.postgres import new_database

        database = new_database("botwire_reliability_prop")
    with running_server("--no-access-log", database=database) as s:
        yield s


def test_any_key_and_value_round_trip_over_http(prop_server: ServerProcess) -> None:
    m = Memory("prop", url=prop_server.url)

    @given(key=KEYS, value=JSON)
    @settings(
        max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(key: str, value: Any) -> None:
        m.set(key, value)
        back = m.get(key)
        assert _same(back, value), (key, value, back)
        assert key in m.list(prefix=key)
        assert m.append(f"list:{key}", value) >= 1
        assert _same(m.tail(f"list:{key}", 1)[0], value)

    try:
        check()
    finally:
        m.close()


def test_any_namespace_string_gets_a_4xx_or_works(prop_server: ServerProcess) -> None:
    @given(ns=st.text(min_size=0, max_size=140))
    @settings(
        max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(ns: str) -> None:
        try:
            m = Memory(ns, url=prop_server.url)
        except InvalidNamespace:
            valid = False
        else:
            valid = True
            m.set("k", ns)
            assert m.get("k") == ns
            m.close()
        # and the raw route, bypassing the client's validation
        from urllib.parse import quote

        r = httpx.put(
            f"{prop_server.url}/v1/namespaces/{quote(ns, safe='')}/keys/k", json={"value": 1}
        )
        assert r.status_code < 500, r.text
        assert (r.status_code == 200) == valid or ns == "", (ns, r.status_code, r.text)

    check()
    _healthy(prop_server)
