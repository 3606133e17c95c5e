"""Expired entries are invisible at once and purged by the background housekeeping; old
idempotency records are forgotten after 24 h."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server.srv_helpers import key_url
from support.server import ServerProcess, running_server


@pytest.fixture(scope="module")
def hk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    db = tmp_path_factory.mktemp("hk") / "b.db"
    with running_server(
        database=db, testing_clock=True, env={"BOTWIRE_HOUSEKEEPING_SECONDS": "0.2"}
    ) as s:
        yield s, db


def _rows(db: Path, sql: str, *params: object) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def _eventually(check, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_expired_entries_are_purged_in_the_background(
    hk: tuple[ServerProcess, Path], ns: str
) -> None:
    server, db = hk
    with httpx.Client(base_url=server.url) as http:
        http.put(key_url(ns, "short"), json={"value": 1, "ttl": 50})
        http.patch(key_url(ns, "list"), json={"append": [1, 2, 3], "ttl": 50})
        http.put(key_url(ns, "forever"), json={"value": 1})
        count = "SELECT count(*) FROM bw_entries WHERE ns = ?"
        assert _rows(db, count, ns) == 3
        http.post("/_testing/clock", json={"advance": 51})
        assert http.get(key_url(ns, "short")).status_code == 404  # invisible at once
        assert _eventually(lambda: _rows(db, count, ns) == 1)
        assert _rows(db, "SELECT count(*) FROM bw_items WHERE ns = ?", ns) == 0
        assert http.get(key_url(ns, "forever")).status_code == 200


def test_idempotency_records_are_forgotten_after_a_day(
    hk: tuple[ServerProcess, Path], ns: str
) -> None:
    server, db = hk
    with httpx.Client(base_url=server.url) as http:
        headers = {"Idempotency-Key": f"ik-{ns}"}
        assert http.patch(key_url(ns, "n"), json={"incr": 1}, headers=headers).status_code == 200
        count = "SELECT count(*) FROM bw_idempotency WHERE ns = ?"
        assert _rows(db, count, ns) == 1
        http.post("/_testing/clock", json={"advance": 3600})
        time.sleep(0.6)
        assert _rows(db, count, ns) == 1  # an hour later: still replayed
        replay = http.patch(key_url(ns, "n"), json={"incr": 1}, headers=headers)
        assert replay.json()["value"] == 1
        http.post("/_testing/clock", json={"advance": 86400})
        assert _eventually(lambda: _rows(db, count, ns) == 0)
        again = http.patch(key_url(ns, "n"), json={"incr": 1}, headers=headers)
        assert again.json()["value"] == 2
