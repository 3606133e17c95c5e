"""GET /v1/namespaces (added for the console, issue 20): scoped by the token, paged, on both
engines, against real botwire-server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.postgres import postgres_url as _postgres_url
from support.server import ServerProcess, running_server

from botwire import Memory
from botwire.store import SQLiteStore
from botwire_server.api._namespace_list import SCAN_LIMIT
from botwire_server.auth import mint_token

SECRET = "console-test-secret-0123456789abcdef"
postgres_url = _postgres_url(scope="module", prefix="botwire_console")


def _seed(client: httpx.Client, names: list[str]) -> None:
    for ns in names:
        r = client.put(f"/v1/namespaces/{ns}/keys/k", json={"value": {"ns": ns}})
        assert r.status_code == 200, r.text


def _all(client: httpx.Client, **query: object) -> tuple[list[str], int]:
    """Every namespace the client sees, following cursors; and how many pages it took."""
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/namespaces", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        names += [n["namespace"] for n in body["namespaces"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            return names, pages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("console-api") / "bw.db"
    with running_server("--token-secret", SECRET, database=db) as s:
        yield s


def _client(server: ServerProcess, patterns: list[str], perm: str = "write") -> httpx.Client:
    token = mint_token(SECRET, patterns, perm=perm)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_a_scoped_token_lists_only_the_namespaces_it_covers(server: ServerProcess) -> None:
    with _client(server, ["*"]) as admin:
        _seed(admin, ["acme-alice", "acme-bob", "globex-carol", "acme", "zeta-acme-x"])
        # a namespace whose keys were all deleted is not listed
        _seed(admin, ["acme-gone"])
        assert admin.delete("/v1/namespaces/acme-gone/keys/k").json() == {"deleted": True}
    with _client(server, ["acme-*"], perm="read") as reader:
        names, _ = _all(reader)
        assert names == ["acme-alice", "acme-bob"]
        body = reader.get("/v1/namespaces").json()
        assert body["namespaces"][0] == {
            "namespace": "acme-alice",
            "keys": 1,
            "bytes": body["namespaces"][0]["bytes"],
        }
        assert body["namespaces"][0]["bytes"] > 0
    with _client(server, ["globex-carol", "acme"]) as two:
        assert _all(two)[0] == ["acme", "globex-carol"]


def test_no_token_or_a_bad_one_is_401(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/v1/namespaces").status_code == 401
    forged = mint_token("another-secret-0123456789abcdefghij", ["*"])
    r = httpx.get(server.url + "/v1/namespaces", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_prefix_limit_and_cursor_paging(server: ServerProcess) -> None:
    names = [f"page-{i:03d}" for i in range(25)]
    with _client(server, ["*"]) as admin:
        _seed(admin, names)
        first = admin.get("/v1/namespaces", params={"prefix": "page-", "limit": 10}).json()
        assert [n["namespace"] for n in first["namespaces"]] == names[:10]
        assert first["cursor"] == "page-009"
        seen, pages = _all(admin, prefix="page-", limit=10)
        assert seen == names and pages == 3
        for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"prefix": "p" * 129}):
            r = admin.get("/v1/namespaces", params=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid_argument"
            assert (
                "limit" in r.json()["error"]["message"] or "prefix" in r.json()["error"]["message"]
            )


def test_a_narrow_token_among_many_namespaces_pages_by_scan_budget(tmp_path: Path) -> None:
    """One request reads at most SCAN_LIMIT statistics rows: a token matching 2 of ~6,000
    namespaces gets short pages with a cursor, never an unbounded scan, and still both."""
    count = SCAN_LIMIT + 1000
    db = tmp_path / "many.db"
    # seeded through botwire's own embedded store (the server's engine), before the server
    # opens the file: 6,000 HTTP round trips would cost this loaded machine ~10 s
    store = SQLiteStore(str(db))
    try:
        for i in range(count):
            Memory(f"scan-{i:05d}", store=store).set("k", 1)
    finally:
        store.close()
    with (
        running_server("--token-secret", SECRET, database=db) as s,
        _client(s, ["scan-00000", f"scan-{count - 1:05d}"], perm="read") as narrow,
    ):
        first = narrow.get("/v1/namespaces", params={"prefix": "scan-"}).json()
        assert [n["namespace"] for n in first["namespaces"]] == ["scan-00000"]
        assert first["cursor"] is not None  # the scan budget ran out before the end
        seen, pages = _all(narrow, prefix="scan-")
        assert seen == ["scan-00000", f"scan-{count - 1:05d}"] and pages == 2
        with _client(s, ["*"]) as admin:
            assert len(_all(admin, prefix="scan-", limit=1000)[0]) == count
    print(
        f"FIGURE namespace listing: {count} namespaces scanned in {pages} pages for a "
        "2-namespace token"
    )


@pytest.mark.postgres
def test_listing_on_postgresql_is_scoped_and_ordered_bytewise(postgres_url: str) -> None:
    with running_server("--token-secret", SECRET, database=postgres_url) as s:
        with _client(s, ["*"]) as admin:
            _seed(admin, ["pgc-B", "pgc-a", "pgc-_", "other-x"])
            ns = [n for n in _all(admin, prefix="pgc-")[0]]
            assert ns == sorted(ns, key=lambda n: n.encode()) == ["pgc-B", "pgc-_", "pgc-a"]
        with _client(s, ["pgc-a", "pgc-B"], perm="read") as scoped:
            assert _all(scoped)[0] == ["pgc-B", "pgc-a"]
