"""Issue 13 item 3, the bytes half, on SQLite and PostgreSQL: idempotency records count in the
namespace's bytes (``usage().bytes``, ``--max-namespace-bytes``) — added when kept, freed when
dropped, made room for by older records, refused when a request's own record cannot fit, and
freed with their key or namespace. Sizes are read from the database itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.probe import BACKENDS, serving
from support.server import ServerProcess, running_server

from botwire._wire import key_path
from botwire_server.auth import mint_token

CAP = 20_000
SECRET = "record-bytes-secret-0123456789abcdef0123456789"


def _sql(database: str, query: str, *params: Any) -> Any:
    if not database.endswith(".db"):  # a PostgreSQL conninfo string
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            row = conn.execute(query.replace("?", "%s"), params).fetchone()
    else:
        with sqlite3.connect(database) as conn:
            row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _client(server: ServerProcess, perm: str) -> httpx.Client:
    token = mint_token(SECRET, ["*"], perm=perm, expires_in=3600)
    return httpx.Client(
        base_url=server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.fixture(params=BACKENDS)
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    env = {"BOTWIRE_TOKEN_SECRET": SECRET}
    args = ("--max-namespace-bytes", str(CAP), "--no-access-log")
    with serving(request.param, tmp_path, *args, env=env) as server:
        database = server.proc.args[server.proc.args.index("--database") + 1]  # type: ignore
        yield server, str(database)


def _stored(database: str, ns: str) -> tuple[int, int]:
    """(bytes of entries, UTF-8 bytes of idempotency records) in ``ns``, from the database."""
    data = _sql(database, "SELECT coalesce(sum(bytes), 0) FROM bw_entries WHERE ns = ?", ns)
    octets = (
        "length(CAST(response AS BLOB))" if database.endswith(".db") else "octet_length(response)"
    )
    records = _sql(
        database, f"SELECT coalesce(sum({octets}), 0) FROM bw_idempotency WHERE ns = ?", ns
    )
    return int(data), int(records)


def _usage(http: httpx.Client, ns: str) -> int:
    return int(http.get(f"/v1/namespaces/{ns}").json()["bytes"])


def test_records_count_in_the_namespace_bytes(srv: tuple[ServerProcess, str]) -> None:
    server, database = srv
    ns, url = "t1", key_path("t1", "stack")
    with _client(server, "write") as http:
        # each pop's answer (its record) holds a 900-character item the list no longer does
        for i in range(30):
            assert http.patch(url, json={"append": ["x" * 900]}).status_code == 200
            r = http.patch(url, json={"pop": True}, headers={"Idempotency-Key": f"p{i}"})
            assert r.status_code == 200, r.text[:200]
        data, records = _stored(database, ns)
        used = _usage(http, ns)
        print(
            f"\nFIGURE 30 keyed pops of 900 chars: data {data} B, records {records} B, "
            f"usage {used} B, cap {CAP}"
        )
        assert records > 9_000  # the records are kept...
        assert used == data + records <= CAP  # ...counted, and the oldest made way under the cap

        # data takes room from the records (they only serve retries): an 8 KB value fits
        big = key_path(ns, "big")
        assert http.put(big, json={"value": "y" * 8_000}).status_code == 200
        data, records = _stored(database, ns)
        assert _usage(http, ns) == data + records <= CAP

        # a write whose own record cannot fit next to the data is refused, nothing applied:
        # 8 KB + 7 KB of data fit the 20 KB cap, the answer that repeats the 7 KB does not
        r = http.post(
            f"/v1/namespaces/{ns}/batch",
            json={
                "ops": [{"op": "set", "key": "c", "value": "z" * 7_000}, {"op": "get", "key": "c"}]
            },
            headers={"Idempotency-Key": "too-big"},
        )
        assert r.status_code == 429, r.text[:200]
        assert r.json()["error"]["quota"] == "max_namespace_bytes"
        assert http.get(key_path(ns, "c")).status_code == 404
        assert _usage(http, ns) == sum(_stored(database, ns))

        # deleting the key frees its records' bytes; deleting the namespace frees everything
        assert http.delete(url).status_code == 200
        data, records = _stored(database, ns)
        assert records == 0 and _usage(http, ns) == data
        assert http.patch(url, json={"append": ["w"]}).status_code == 200
        assert (
            http.patch(url, json={"pop": True}, headers={"Idempotency-Key": "w"}).status_code == 200
        )
        assert _usage(http, ns) == sum(_stored(database, ns))
        assert http.delete(f"/v1/namespaces/{ns}").status_code == 200
        assert _usage(http, ns) == 0 and _stored(database, ns) == (0, 0)


def test_records_count_utf8_bytes_not_characters(srv: tuple[ServerProcess, str]) -> None:
    """A kept answer holding "ü" * 1000 counts 2,000+ bytes (it counted 1,000 characters)."""
    server, database = srv
    ns, url = "t2", key_path("t2", "umlauts")
    with _client(server, "write") as http:
        assert http.patch(url, json={"append": ["ü" * 1000]}).status_code == 200
        r = http.patch(url, json={"pop": True}, headers={"Idempotency-Key": "u1"})
        assert r.status_code == 200 and r.json()["value"] == "ü" * 1000
        data, records = _stored(database, ns)
        used = _usage(http, ns)
        print(f"\nFIGURE a kept answer of 1000 x 'ü': record {records} B (UTF-8), usage {used} B")
        assert records >= 2000
        assert used == data + records
        # and freed by the same measure: nothing is left over when the key goes
        assert http.delete(url).status_code == 200
        assert _usage(http, ns) == sum(_stored(database, ns)) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_recounts_records_kept_before(backend: str, tmp_path: Path) -> None:
    """A store written by a version that kept records outside the bytes (or counted their
    characters) is recounted once when the new server first opens it."""
    if backend == "postgres":
        from support.postgres import new_database

        database: Any = new_database("botwire_recount")
        old_schema = 2
    else:
        database = tmp_path / "old.db"
        old_schema = 1
    env = {"BOTWIRE_TOKEN_SECRET": SECRET}
    ns = "t3"
    with (
        running_server("--no-access-log", database=database, env=env) as server,
        _client(server, "write") as http,
    ):
        url = key_path(ns, "stack")
        assert http.put(key_path(ns, "v"), json={"value": "ä" * 100}).status_code == 200
        for i in range(3):
            assert http.patch(url, json={"append": ["ö" * 500]}).status_code == 200
            assert (
                http.patch(
                    url, json={"pop": True}, headers={"Idempotency-Key": f"k{i}"}
                ).status_code
                == 200
            )
    db = str(database)
    data, records = _stored(db, ns)
    assert records >= 3000
    # what the old code left: records outside the bytes, and the older schema number
    _sql(db, "UPDATE bw_namespaces SET bytes = ? WHERE ns = ? RETURNING bytes", data, ns)
    _sql(db, "UPDATE bw_meta SET schema = ? RETURNING schema", old_schema)
    with (
        running_server("--no-access-log", database=database, env=env) as server,
        _client(server, "read") as http,
    ):
        used = _usage(http, ns)
    print(
        f"\nFIGURE upgrade [{backend}]: data {data} B + records {records} B; usage after "
        f"the recount {used} B (was {data} B)"
    )
    assert used == data + records
