"""Quotas (DESIGN §7): writes per day (429 + Retry-After), bytes, keys, value size."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from server.srv_helpers import key_url
from support.server import ServerProcess, running_server

N = 5


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        "--writes-per-day",
        str(N),
        "--max-keys",
        "3",
        "--max-namespace-bytes",
        "2000",
        "--max-value-bytes",
        "1500",
        database=tmp_path_factory.mktemp("q") / "b.db",
        testing_clock=True,
    ) as s:
        yield s


@pytest.fixture
def http(limited: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited.url) as client:
        yield client


def _utc_midnight_in() -> float:
    now = time.time()
    return (now // 86400 + 1) * 86400 - now


def test_exactly_n_writes_pass_then_429_with_retry_after(http: httpx.Client, ns: str) -> None:
    for i in range(N):
        r = http.put(key_url(ns, "k"), json={"value": i})
        assert r.status_code == 200, i
    over = http.put(key_url(ns, "k"), json={"value": "over"})
    assert over.status_code == 429
    err = over.json()["error"]
    assert err["code"] == "quota_exceeded"
    assert err["quota"] == "writes_per_day"
    retry = int(over.headers["retry-after"])
    assert abs(retry - _utc_midnight_in()) <= 5
    assert err["retry_after"] == retry
    # every write kind counts and is refused; reads and deletes still work
    assert http.patch(key_url(ns, "l"), json={"append": [1]}).status_code == 429
    assert http.patch(key_url(ns, "n"), json={"incr": 1}).status_code == 429
    assert (
        http.post(
            f"/v1/namespaces/{ns}/batch", json={"ops": [{"op": "set", "key": "b", "value": 1}]}
        ).status_code
        == 429
    )
    assert http.put(f"/memory/{ns}/c", json={"value": "x"}).status_code == 429
    assert http.get(key_url(ns, "k")).json()["value"] == N - 1
    assert http.delete(key_url(ns, "k")).status_code == 200
    # another namespace has its own budget
    assert http.put(key_url(ns + "-other", "k"), json={"value": 1}).status_code == 200


def test_quota_resets_at_utc_midnight(http: httpx.Client, ns: str) -> None:
    for i in range(N):
        assert http.put(key_url(ns, "k"), json={"value": i}).status_code == 200
    assert http.put(key_url(ns, "k"), json={"value": 0}).status_code == 429
    usage = http.get(f"/v1/namespaces/{ns}").json()
    assert usage["writes_today"] == N
    http.post("/_testing/clock", json={"advance": _utc_midnight_in() + 1})
    assert http.put(key_url(ns, "k"), json={"value": "tomorrow"}).status_code == 200


def test_max_keys(http: httpx.Client, ns: str) -> None:
    for i in range(3):
        assert http.put(key_url(ns, f"k{i}"), json={"value": 1}).status_code == 200
    r = http.put(key_url(ns, "k3"), json={"value": 1})
    assert r.status_code == 429
    assert r.json()["error"]["quota"] == "max_keys"
    assert "retry-after" not in r.headers
    assert http.put(key_url(ns, "k0"), json={"value": 2}).status_code == 200  # update is fine


def test_max_namespace_bytes(http: httpx.Client, ns: str) -> None:
    assert http.put(key_url(ns, "a"), json={"value": "x" * 1200}).status_code == 200
    r = http.put(key_url(ns, "b"), json={"value": "x" * 1200})
    assert r.status_code == 429
    assert r.json()["error"]["quota"] == "max_namespace_bytes"
    assert "retry-after" not in r.headers


def test_value_size_boundary(http: httpx.Client, ns: str) -> None:
    # The stored JSON text of a string is its length + 2 quotes.
    assert http.put(key_url(ns, "v"), json={"value": "x" * 1498}).status_code == 200
    r = http.put(key_url(ns, "w"), json={"value": "x" * 1499})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "value_too_large"


def test_free_tier_preset(tmp_path_factory: pytest.TempPathFactory) -> None:
    with (
        running_server("--free-tier", database=tmp_path_factory.mktemp("ft") / "b.db") as s,
        httpx.Client(base_url=s.url) as http,
    ):
        limits = http.get("/v1/namespaces/ft").json()["limits"]
        assert limits["writes_per_day"] == 1000
        assert limits["max_namespace_bytes"] == 50_000_000
        assert limits["max_value_bytes"] == 1024 * 1024
        assert limits["max_keys"] == 0
        ops = [{"op": "incr", "key": "n"}] * 1000
        assert http.post("/v1/namespaces/ft/batch", json={"ops": ops}).status_code == 200
        r = http.put(key_url("ft", "k"), json={"value": 1})
        assert r.status_code == 429
        assert "retry-after" in r.headers
        for _ in range(20):  # reads are unlimited
            assert http.get(key_url("ft", "n")).json()["value"] == 1000
