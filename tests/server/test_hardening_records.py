"""Issue 13 items 3 and 7, on SQLite and PostgreSQL: idempotency records exist only for
requests that change something, never replay deleted data, and are bounded per namespace;
reads never create rows. Counts are read from the database itself and printed."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.probe import BACKENDS, serving
from support.server import ServerProcess

from botwire._wire import key_path
from botwire_server.auth import mint_token

# botwire.store._sql.MAX_IDEMPOTENCY_RECORDS, as a literal so the test also runs on old code
MAX_IDEMPOTENCY_RECORDS = 1000

SECRET = "records-secret-0123456789abcdef0123456789ab"


@pytest.fixture(params=BACKENDS)
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    env = {"BOTWIRE_TOKEN_SECRET": SECRET}  # (not a file: the test also runs on old servers)
    args = ("--max-namespace-bytes", "2000000", "--no-access-log")
    with serving(request.param, tmp_path, *args, env=env) as server:
        database = server.proc.args[server.proc.args.index("--database") + 1]  # type: ignore
        yield server, str(database)


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


def _records(database: str, ns: str) -> int:
    return int(_sql(database, "SELECT count(*) FROM bw_idempotency WHERE ns = ?", ns))


def test_reads_with_an_idempotency_key_store_nothing(srv: tuple[ServerProcess, str]) -> None:
    server, database = srv
    with _client(server, "write") as writer:
        assert writer.put(key_path("t1", "big"), json={"value": "x" * 900_000}).status_code == 200
    with _client(server, "read") as reader:
        for _ in range(4):  # the old server stored each 16 MB answer: 64 MB in a 2 MB namespace
            r = reader.post(
                "/v1/namespaces/t1/batch",
                json={"ops": [{"op": "get", "key": "big"}] * 16},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code in (200, 413), r.text[:200]
        stored = _sql(database, "SELECT coalesce(sum(length(response)), 0) FROM bw_idempotency")
    print(f"\nFIGURE read batches with Idempotency-Key: {stored} bytes of records stored")
    assert _records(database, "t1") == 0 and int(stored) == 0


def test_a_replay_after_delete_never_returns_deleted_data(srv: tuple[ServerProcess, str]) -> None:
    server, database = srv
    with _client(server, "write") as http:
        url = key_path("t1", "stack")
        assert http.patch(url, json={"append": ["secret-a", "secret-b"]}).status_code == 200
        pop_key = {"Idempotency-Key": "pop-1"}
        first = http.patch(url, json={"pop": True}, headers=pop_key)
        assert first.json()["value"] == "secret-b"
        # a retry before any delete replays the answer (that is what the key is for)
        assert http.patch(url, json={"pop": True}, headers=pop_key).json() == first.json()
        assert http.get(url).json()["value"] == ["secret-a"]
        # the key is deleted: its records go with it
        assert http.delete(url).json() == {"deleted": True}
        replay = http.patch(url, json={"pop": True}, headers=pop_key)
        assert replay.status_code == 200 and "secret" not in replay.text
        # the namespace is deleted: every record of it goes with it
        assert http.patch(url, json={"append": ["secret-c"]}).status_code == 200
        second = http.post(
            "/v1/namespaces/t1/batch",
            json={
                "ops": [{"op": "pop", "key": "stack"}, {"op": "set", "key": "other", "value": 1}]
            },
            headers={"Idempotency-Key": "pop-2"},
        )
        assert second.json()["results"][0]["value"] == "secret-c"
        assert _records(database, "t1") >= 1
        assert http.delete("/v1/namespaces/t1").status_code == 200
        assert _records(database, "t1") == 0
        replay = http.post(
            "/v1/namespaces/t1/batch",
            json={
                "ops": [{"op": "pop", "key": "stack"}, {"op": "set", "key": "other", "value": 1}]
            },
            headers={"Idempotency-Key": "pop-2"},
        )
        assert replay.status_code == 200 and "secret" not in replay.text


def test_records_are_bounded_per_namespace(srv: tuple[ServerProcess, str]) -> None:
    server, database = srv
    extra = 50
    with _client(server, "write") as http:
        url = key_path("t2", "n")
        for i in range(MAX_IDEMPOTENCY_RECORDS + extra):
            r = http.patch(url, json={"incr": 1}, headers={"Idempotency-Key": f"k{i}"})
            assert r.status_code == 200
        kept = _records(database, "t2")
        # the newest are kept: a retry of the last request still replays
        r = http.patch(
            url,
            json={"incr": 1},
            headers={"Idempotency-Key": f"k{MAX_IDEMPOTENCY_RECORDS + extra - 1}"},
        )
        assert r.json()["value"] == MAX_IDEMPOTENCY_RECORDS + extra
    print(
        f"\nFIGURE idempotency records kept after {MAX_IDEMPOTENCY_RECORDS + extra} keyed "
        f"writes: {kept}"
    )
    assert kept == MAX_IDEMPOTENCY_RECORDS


def test_reads_never_create_rows(srv: tuple[ServerProcess, str]) -> None:
    server, database = srv
    before = int(_sql(database, "SELECT count(*) FROM bw_namespaces"))
    reads = 300  # the 2,000 in the slow run's spirit; 300 shows it in CI time
    with _client(server, "read") as reader:
        for i in range(reads):
            ns = f"probe-{i}"
            assert reader.get(f"/v1/namespaces/{ns}").json()["keys"] == 0
            assert reader.get(key_path(ns, "k")).status_code == 404
            assert reader.get(f"/v1/namespaces/{ns}/keys").status_code == 200
            r = reader.post(
                f"/v1/namespaces/{ns}/batch",
                json={
                    "ops": [{"op": "get", "key": "k"}, {"op": "check", "key": "k", "version": None}]
                },
            )
            assert r.status_code == 200, r.text
    with _client(server, "write") as writer:
        assert writer.delete("/v1/namespaces/never-written").json() == {"deleted": 0}
    after = int(_sql(database, "SELECT count(*) FROM bw_namespaces"))
    print(f"\nFIGURE {reads * 4} reads of {reads} unknown namespaces created {after - before} rows")
    assert after == before
