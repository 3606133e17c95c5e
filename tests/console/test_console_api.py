"""GET /v1/namespaces (added for the console, issue 20): scoped by the token, paged, on both
engines, against real botwire-server processes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.postgres import postgres_url as _postgres_url
from support.server import ServerProcess, running_server

from botwire import Memory
from botwire.store import SQLiteStore
from botwire_server.api._namespace_list import SCAN_LIMIT, scan_ranges
from botwire_server.auth import ANONYMOUS, Principal, mint_token

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
        assert first["cursor"] and "page" not in first["cursor"]  # opaque
        seen, pages = _all(admin, prefix="page-", limit=10)
        assert seen == names and pages == 3
        for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"prefix": "p" * 129}):
            r = admin.get("/v1/namespaces", params=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid_argument"
            assert (
                "limit" in r.json()["error"]["message"] or "prefix" in r.json()["error"]["message"]
            )


def _sealed(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def test_a_narrow_token_among_many_namespaces_learns_nothing_from_cursors(tmp_path: Path) -> None:
    """One request reads at most SCAN_LIMIT statistics rows: a token matching 2 of ~6,000
    namespaces with patterns that start with a wildcard gets short pages with a cursor, never an
    unbounded scan, and still both. Its cursors stop on other tenants' namespaces, yet say
    nothing about them: sealed, all of one length. A pattern with a literal start scans only
    its own part of the rows."""
    count = SCAN_LIMIT + 1000
    db = tmp_path / "many.db"
    # seeded through botwire's own embedded store (the server's engine), before the server
    # opens the file: 6,000 HTTP round trips would cost this loaded machine ~10 s
    store = SQLiteStore(str(db))
    try:
        for i in range(count):
            Memory(f"scan-{i:05d}", store=store).set("k", 1)
        Memory("zz-evil", store=store).set("k", 1)
    finally:
        store.close()
    last = f"scan-{count - 1:05d}"
    with (
        running_server("--token-secret", SECRET, database=db) as s,
        _client(s, ["*can-00000", "*" + last[1:]], perm="read") as narrow,
    ):
        first = narrow.get("/v1/namespaces", params={"prefix": "scan-"}).json()
        assert [n["namespace"] for n in first["namespaces"]] == ["scan-00000"]
        assert first["cursor"] is not None  # the scan budget ran out before the end
        cursors: list[str] = []
        cursor: str | None = None
        seen: list[str] = []
        while True:
            params = {"prefix": "scan-", **({"cursor": cursor} if cursor else {})}
            page = narrow.get("/v1/namespaces", params=params).json()
            seen += [n["namespace"] for n in page["namespaces"]]
            cursor = page["cursor"]
            if cursor is None:
                break
            cursors.append(cursor)
        assert seen == ["scan-00000", last] and len(cursors) == 1
        # the scan stopped on scan-04999, which this token does not cover: not in the cursor,
        # in clear or in base64, and a cursor's length does not depend on where it stopped
        for c in [*cursors, first["cursor"]]:
            assert "scan" not in c and b"scan" not in _sealed(c)
            assert len(c) == len(first["cursor"])
        assert first["cursor"] != cursors[0]  # a fresh nonce each time: not even equality
        with _client(s, ["zz-evil*"], perm="read") as evil:
            # one page, no cursor: it scanned only names starting "zz-evil", not 6,000 others
            page = evil.get("/v1/namespaces").json()
            assert [n["namespace"] for n in page["namespaces"]] == ["zz-evil"]
            assert page["cursor"] is None
        with _client(s, ["*"]) as admin:
            assert len(_all(admin, prefix="scan-", limit=1000)[0]) == count
    print(
        f"FIGURE namespace listing: {count} namespaces scanned in {len(cursors) + 1} pages for a "
        "2-namespace token"
    )


def test_an_altered_or_borrowed_cursor_is_a_clear_400(server: ServerProcess) -> None:
    names = [f"seal-{i:02d}" for i in range(6)]
    with _client(server, ["*"]) as admin:
        _seed(admin, names)
    with _client(server, ["seal-*"]) as mine, _client(server, ["sea*"]) as other:
        cursor = mine.get("/v1/namespaces", params={"prefix": "seal-", "limit": 2}).json()["cursor"]
        ok = mine.get("/v1/namespaces", params={"prefix": "seal-", "cursor": cursor}).json()
        assert [n["namespace"] for n in ok["namespaces"]] == names[2:]
        raw = bytearray(_sealed(cursor))
        raw[20] ^= 1
        flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        for client, prefix, bad in (
            (mine, "seal-", flipped),  # altered
            (mine, "seal-", cursor[:-4]),  # cut
            (mine, "seal-", "seal-01"),  # a name, as cursors used to be
            (mine, "seal-", "%%%"),  # not base64
            (mine, "seal-0", cursor),  # another prefix
            (other, "seal-", cursor),  # another token's patterns
        ):
            r = client.get("/v1/namespaces", params={"prefix": prefix, "cursor": bad})
            assert r.status_code == 400, (bad, r.text)
            error = r.json()["error"]
            assert error["code"] == "invalid_argument"
            assert "Start again without a cursor" in error["message"]
        r = mine.get("/v1/namespaces", params={"cursor": "x" * 257})
        assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]


def test_only_the_rows_under_the_patterns_literal_starts_are_scanned(
    server: ServerProcess,
) -> None:
    def ranges(patterns: list[str], prefix: str = "") -> list[str]:
        return scan_ranges(Principal(tuple(patterns), "read"), prefix)

    assert ranges(["t-1*", "t-1-x", "t-2?", "u[ab]*"]) == ["t-1", "t-2", "u"]
    assert ranges(["t-1*", "*-prod"]) == [""]  # a leading wildcard: everything
    assert ranges(["t-1*", "t-2*"], prefix="t-1-") == ["t-1-"]
    assert ranges(["t-1*"], prefix="v") == []  # nothing to read at all
    assert scan_ranges(ANONYMOUS, "p") == ["p"]
    names = ["multi-a-1", "multi-a-2", "multi-b-1", "multi-b-2", "multi-c-1", "multi-d-1"]
    with _client(server, ["*"]) as admin:
        _seed(admin, names)
    with _client(server, ["multi-d-*", "multi-a-*", "multi-b-?"], perm="read") as reader:
        seen, pages = _all(reader, prefix="multi-", limit=1)  # a cursor in each range
        assert seen == ["multi-a-1", "multi-a-2", "multi-b-1", "multi-b-2", "multi-d-1"]
        assert pages == 6


@pytest.mark.postgres
def test_listing_on_postgresql_is_scoped_and_ordered_bytewise(postgres_url: str) -> None:
    with running_server("--token-secret", SECRET, database=postgres_url) as s:
        with _client(s, ["*"]) as admin:
            _seed(admin, ["pgc-B", "pgc-a", "pgc-_", "other-x"])
            ns = [n for n in _all(admin, prefix="pgc-")[0]]
            assert ns == sorted(ns, key=lambda n: n.encode()) == ["pgc-B", "pgc-_", "pgc-a"]
        with _client(s, ["pgc-a", "pgc-B"], perm="read") as scoped:
            assert _all(scoped)[0] == ["pgc-B", "pgc-a"]
