"""The same server on PostgreSQL (``--database postgresql://...``): the store is imported lazily,
called through the thread pool, and shared by two server processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from server.srv_helpers import key_url
from support.postgres import postgres_url as _postgres_url_fixture
from support.server import ServerProcess, running_server

pytestmark = pytest.mark.postgres

postgres_url = _postgres_url_fixture(prefix="botwire_server_http")


@pytest.fixture(scope="module")
def pg_servers(postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with (
        running_server("--writes-per-day", "5", database=postgres_url, testing_clock=True) as a,
        running_server("--writes-per-day", "5", database=postgres_url) as b,
    ):
        yield a, b


def test_routes_on_postgres(pg_servers: tuple[ServerProcess, ServerProcess]) -> None:
    a, _ = pg_servers
    assert "'database': 'postgresql://...'" in a.log()  # really PostgreSQL, not a SQLite file
    ns = f"pg-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=a.url) as http:
        assert http.get("/readyz").json() == {"status": "ready"}
        v = http.put(key_url(ns, "a/b#c"), json={"value": {"x": [1, None]}}).json()["version"]
        got = http.get(key_url(ns, "a/b#c"))
        assert got.json()["value"] == {"x": [1, None]}
        assert got.headers["etag"] == f'"{v}"'
        assert (
            http.put(
                key_url(ns, "a/b#c"), json={"value": 2}, headers={"If-Match": f'"{v + 50}"'}
            ).status_code
            == 412
        )
        assert http.patch(key_url(ns, "l"), json={"append": [1, 2]}).json()["length"] == 2
        r = http.post(
            f"/v1/namespaces/{ns}/batch",
            json={
                "ops": [
                    {"op": "get", "key": "l", "tail": 1},
                    {"op": "check", "key": "zz", "version": None},
                ]
            },
        )
        assert r.json()["results"][0]["value"] == [2]
        keys = http.get(f"/v1/namespaces/{ns}/keys").json()["keys"]
        assert [k["key"] for k in keys] == ["a/b#c", "l"]
        assert http.get(f"/memory/{ns}/l").json()["value"] == "[1,2]"


def test_two_replicas_share_versions_and_quotas(
    pg_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pg_servers
    ns = f"pg-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=a.url) as ha, httpx.Client(base_url=b.url) as hb:
        va = ha.put(key_url(ns, "k"), json={"value": "from a"}).json()["version"]
        assert hb.get(key_url(ns, "k")).json() == {
            **hb.get(key_url(ns, "k")).json(),
            "value": "from a",
            "version": va,
        }
        ikey = {"Idempotency-Key": str(uuid.uuid4())}
        first = ha.patch(key_url(ns, "n"), json={"incr": 1}, headers=ikey).json()
        assert hb.patch(key_url(ns, "n"), json={"incr": 1}, headers=ikey).json() == first
        for client in (ha, hb, ha):  # 2 + 3 = 5 writes
            assert client.put(key_url(ns, "w"), json={"value": 1}).status_code == 200
        over = hb.put(key_url(ns, "w"), json={"value": 1})
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) > 0
