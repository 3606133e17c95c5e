"""A hostile tenant with ordinary access against a real server (issue 13, items 1, 2 and 5):
it must not be able to take the server down for the other tenants. Each attack is refused with
a 4xx naming the limit *before* the work is done, and the test prints what it measured: the
server's RSS growth and ``/healthz`` latency (p99, max) as another tenant sees it meanwhile.

Figures are printed (``FIGURE ...``), never asserted on; the assertions are about answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.probe import BACKENDS, HealthProbe, RSSWatch, serving
from support.server import ServerProcess

from botwire._wire import key_path
from botwire_server.auth import mint_token

SECRET = "hostile-tenant-secret-0123456789abcdef0123"
JSON = {"Content-Type": "application/json"}
NESTED_MB = b"[" + b"[]," * 333_000 + b"[]]"  # ~1 MB of JSON that decodes into 333k lists


def _client(server: ServerProcess, perm: str) -> httpx.Client:
    token = mint_token(SECRET, ["*"], perm=perm, expires_in=3600)
    return httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture(params=BACKENDS)
def tenant_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    # settings through the environment (secret files: test_hardening_secrets.py), so the same
    # test also runs against a server that predates them (see docs/reliability.md)
    env = {"BOTWIRE_TOKEN_SECRET": SECRET, "BOTWIRE_WRITE_TIMEOUT": "2"}
    with serving(request.param, tmp_path, "--no-access-log", env=env) as server:
        yield server


def _figure(name: str, backend: str, probe: HealthProbe, rss: RSSWatch, **extra: object) -> None:
    shown = " ".join(f"{k}={v}" for k, v in extra.items())
    print(
        f"\nFIGURE {name} [{backend}]: healthz p99 {probe.p99_ms:.1f} ms, max "
        f"{probe.max_ms:.1f} ms over {len(probe.latencies)} probes; server RSS "
        f"+{rss.growth_mib:.0f} MiB (peak {rss.peak >> 20} MiB) {shown}"
    )


def _backend(server: ServerProcess) -> str:
    return "postgres" if "dbname=" in " ".join(server.proc.args) else "sqlite"  # type: ignore[arg-type]


def test_response_amplification_is_refused_before_reading(tenant_server: ServerProcess) -> None:
    """Item 1: a read-only token asks for one 1 MB value of nested ``[]`` 40 (and 1,000) times
    in one small batch: 413 naming ``max_response_bytes``, before anything is read."""
    server = tenant_server
    ns = "victim-data"
    with _client(server, "write") as writer:
        r = writer.put(key_path(ns, "big"), content=b'{"value":' + NESTED_MB + b"}", headers=JSON)
        assert r.status_code == 200, r.text
    with (
        _client(server, "read") as reader,
        HealthProbe(server.url) as probe,
        RSSWatch(server.proc.pid) as rss,
    ):
        for count in (40, 1000, 40, 1000):
            body = {"ops": [{"op": "get", "key": "big"}] * count, "atomic": True}
            r = reader.post(f"/v1/namespaces/{ns}/batch", json=body)
            assert r.status_code == 413, r.text[:300]
            error = r.json()["error"]
            assert error["code"] == "value_too_large"
            assert error["quota"] == "max_response_bytes" and error["limit"] > 0
            assert "get_many in smaller chunks" in error["message"]
            assert len(r.content) < 2000
        # within the budget the answer is spliced, not decoded and re-encoded
        r = reader.post(
            f"/v1/namespaces/{ns}/batch", json={"ops": [{"op": "get", "key": "big"}] * 10}
        )
        assert r.status_code == 200
        assert len(r.content) > 10 * len(NESTED_MB)
    _figure(
        "response amplification (40 and 1000 gets of 1 MB, then 10 within budget)",
        _backend(server),
        probe,
        rss,
        answered_bytes=len(r.content),
    )
    assert probe.failures == 0


def test_a_client_that_never_reads_is_cut_after_the_write_timeout(
    tenant_server: ServerProcess,
) -> None:
    """Item 1: a client asks for ~10 MB and never reads: the server aborts the connection
    after BOTWIRE_WRITE_TIMEOUT (2 s here) instead of pinning the answer for ever."""
    server = tenant_server
    ns = "slow-reader"
    with _client(server, "write") as writer:
        assert (
            writer.put(
                key_path(ns, "big"), content=b'{"value":' + NESTED_MB + b"}", headers=JSON
            ).status_code
            == 200
        )
        token = writer.headers["Authorization"]
    body = b'{"ops":[' + b",".join([b'{"op":"get","key":"big"}'] * 12) + b"]}"
    head = (
        f"POST /v1/namespaces/{ns}/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((server.host, server.port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(head + body)
        time.sleep(5)  # > write timeout: the server gives up on us
        received = 0
        s.settimeout(10)
        try:
            while chunk := s.recv(1 << 20):
                received += len(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    expected = 12 * len(NESTED_MB)
    print(
        f"\nFIGURE slow reader [{_backend(server)}]: received {received} of >{expected} bytes "
        "before the server cut the connection"
    )
    assert received < expected
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_parsing_is_bounded_before_parsing(tenant_server: ServerProcess) -> None:
    """Item 2: four 16.5 MB batch bodies of ``[],[],...`` at once get 413 ``max_json_elements``
    without being parsed (the old server grew by ~410 MB per body)."""
    server = tenant_server
    filler = b"[]," * 5_500_000
    body = b'{"ops":[{"op":"get","key":"a"}],"x":[' + filler + b"[]]}"
    statuses: list[int] = []
    errors: list[dict[str, object]] = []

    def attack() -> None:
        with _client(server, "read") as reader:
            r = reader.post("/v1/namespaces/t1/batch", content=body, headers=JSON)
            statuses.append(r.status_code)
            errors.append(r.json()["error"])

    with HealthProbe(server.url) as probe, RSSWatch(server.proc.pid) as rss:
        threads = [threading.Thread(target=attack) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    _figure(f"parse bomb (4 x {len(body) >> 20} MB bodies at once)", _backend(server), probe, rss)
    assert statuses == [413] * 4, statuses
    assert all(e["quota"] == "max_json_elements" for e in errors), errors


@pytest.fixture(params=BACKENDS)
def list_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    # CI-sized list limits (defaults: 100,000 items, 10,000 per append)
    env = {"BOTWIRE_MAX_LIST_LENGTH": "20000", "BOTWIRE_MAX_APPEND_ITEMS": "5000"}
    with serving(request.param, tmp_path, "--no-access-log", env=env) as server:
        yield server


def test_list_attacks_are_bounded(list_server: ServerProcess) -> None:
    """Item 5: appending 600k items, growing a list past its limit, trimming it to one item
    and reading it (whole, and five times in a batch) each stay bounded."""
    server = list_server
    ns, key = "lists", "history"
    url = key_path(ns, key)
    item = b'"' + b"m" * 100 + b'"'
    with (
        httpx.Client(base_url=server.url, timeout=60, headers=JSON) as http,
        HealthProbe(server.url) as probe,
        RSSWatch(server.proc.pid) as rss,
    ):
        huge = b'{"append":[' + b",".join([b"1"] * 600_000) + b"]}"
        r = http.patch(url, content=huge)
        assert r.status_code == 413, r.text[:200]
        assert r.json()["error"]["quota"] == "max_append_items"
        assert http.get(url).status_code == 404  # nothing was stored
        chunk = b'{"append":[' + b",".join([item] * 5000) + b"]}"
        for _ in range(4):
            assert http.patch(url, content=chunk).status_code == 200
        r = http.patch(url, content=b'{"append":[1]}')
        assert r.status_code == 413
        assert r.json()["error"]["quota"] == "max_list_length"
        assert "max_len" in r.json()["error"]["message"]
        # with max_len the same append is fine: the list stays bounded
        r = http.patch(url, content=b'{"append":[1],"max_len":20000}')
        assert r.status_code == 200 and r.json()["length"] == 20000
        got = http.get(url)
        assert got.status_code == 200 and len(got.json()["value"]) == 20000
        five = http.post(
            f"/v1/namespaces/{ns}/batch", json={"ops": [{"op": "get", "key": key}] * 5}
        )
        assert five.status_code == 200 and len(five.json()["results"]) == 5
        r = http.patch(url, content=b'{"append":[2],"max_len":1}')  # trims 20,000 rows
        assert r.status_code == 200 and r.json()["length"] == 1
    _figure(
        "list attacks (600k-item append, list limit, 20k-item reads, trim to 1)",
        _backend(server),
        probe,
        rss,
    )
    assert probe.failures == 0


def test_compat_listing_reads_an_index(list_server: ServerProcess) -> None:
    """Item 5: ``GET /memory/wide?limit=1`` on a wide namespace reads the newest key along an
    index instead of reading and sorting every key of the namespace."""
    server = list_server
    keys = 20_000  # CI-sized; the 200k-key namespace is the same plan, 10x the rows
    with httpx.Client(base_url=server.url, timeout=60, headers=JSON) as http:
        for start in range(0, keys, 1000):
            ops = [
                {"op": "set", "key": f"k{i:06d}", "value": i} for i in range(start, start + 1000)
            ]
            assert http.post("/v1/namespaces/wide/batch", json={"ops": ops}).status_code == 200
        assert http.put(key_path("wide", "a-newest"), json={"value": 0}).status_code == 200
        with HealthProbe(server.url) as probe, RSSWatch(server.proc.pid) as rss:
            for _ in range(20):
                r = http.get("/memory/wide?limit=1")
                assert r.status_code == 200
                assert [k["key"] for k in r.json()["keys"]] == ["a-newest"]
        r = http.get("/memory/wide?limit=3")
        assert [k["key"] for k in r.json()["keys"]] == ["a-newest", "k019999", "k019998"]
    _figure(
        f"compat listing limit=1 of a {keys}-key namespace, 20 times", _backend(server), probe, rss
    )
    if _backend(server) == "sqlite":
        import sqlite3

        from botwire.store._sql import Engine

        database = server.proc.args[server.proc.args.index("--database") + 1]  # type: ignore
        sql = Engine.recent_keys.__code__.co_consts  # the statement the engine runs
        query = next(c for c in sql if isinstance(c, str) and c.startswith("SELECT key"))
        with sqlite3.connect(database) as conn:
            plan = " ".join(
                str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + query, ("wide", 0.0, 1))
            )
        print(f"FIGURE compat listing plan: {plan}")
        assert "bw_entries_version" in plan and "TEMP B-TREE" not in plan
