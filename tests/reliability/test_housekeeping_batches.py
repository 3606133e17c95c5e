"""Housekeeping purges every expired entry, in bounded batches, without stalling requests
(issue 14, item 5).

Before: one round purged the expired entries of at most 100 namespaces; with 3,000 namespaces
holding an expired entry, 2,900 were left after it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support.backends import FakeClock
from support.postgres import PostgresUnavailable, new_database
from support.server import running_server

from botwire._wire import key_path
from botwire.store import Op, SQLiteStore

NAMESPACES = 3000


TTL = 3600  # far beyond the fill's real duration: only the test's clock expires them (a 10 s TTL
#             expired mid-fill on a loaded machine, and inline purges took 100-200 of them)


def _fill(store: Any, prefix: str) -> None:
    for i in range(NAMESPACES):
        ns = f"{prefix}-{i}"
        store.batch(ns, [Op("set", "gone", value="1", ttl=TTL), Op("set", "kept", value="2")])


@pytest.fixture(params=["sqlite", "postgres"])
def store_and_count(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Any, FakeClock, Any]]:
    clock = FakeClock()
    if request.param == "sqlite":
        store: Any = SQLiteStore(tmp_path / "hk.db", clock=clock)

        def count(sql: str) -> int:
            return int(store._conn.execute(sql).fetchone()[0])
    else:
        from botwire_server.storage.postgres import PostgresStore

        try:
            dsn = new_database("botwire_housekeeping")
        except PostgresUnavailable as exc:
            pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
        # The database's clock, moved by the test's offset (as the server's testing clock does).
        store = PostgresStore(dsn, clock_offset=lambda: clock.offset)

        def count(sql: str) -> int:
            with psycopg.connect(dsn) as conn:
                row = conn.execute(sql).fetchone()
            assert row is not None
            return int(row[0])

    try:
        yield store, clock, count
    finally:
        store.close()


def test_one_purge_empties_3000_namespaces(store_and_count: tuple[Any, FakeClock, Any]) -> None:
    store, clock, count = store_and_count
    _fill(store, "hk")
    clock.advance(TTL + 1)
    started = time.perf_counter()
    purged = store.purge_expired()
    took = time.perf_counter() - started
    print(
        f"FIGURE housekeeping {type(store).__name__}: {purged} expired entries in "
        f"{NAMESPACES} namespaces purged in one call, {took:.2f} s"
    )
    assert count("SELECT count(*) FROM bw_entries WHERE expires_at IS NOT NULL") == 0
    assert purged == NAMESPACES
    assert count("SELECT count(*) FROM bw_entries") == NAMESPACES  # the live ones stay
    assert count("SELECT sum(keys) FROM bw_namespaces") == NAMESPACES  # statistics follow


def test_inline_purge_is_one_bounded_batch(tmp_path: Path) -> None:
    """The purge a write triggers (every 512 writes) does one batch, not the whole store."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "inline.db", clock=clock)
    try:
        _fill(store, "in")
        clock.advance(TTL + 1)
        assert store.purge_expired(max_batches=1) == 100
        assert store.purge_expired() == NAMESPACES - 100
    finally:
        store.close()


def test_server_housekeeping_round_purges_all_while_serving(tmp_path: Path) -> None:
    """A real server's background round leaves 0 expired entries, and reads keep being
    answered meanwhile (their worst latency during the round is printed, not asserted)."""
    db = tmp_path / "srv.db"
    store = SQLiteStore(db)
    _fill(store, "srv")
    store.close()
    env = {"BOTWIRE_HOUSEKEEPING_SECONDS": "1"}
    with (
        running_server("--no-access-log", database=db, testing_clock=True, env=env) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        http.put(key_path("probe", "k"), json={"value": 1})
        latencies: list[float] = []
        stop = threading.Event()

        def reader() -> None:
            with httpx.Client(base_url=server.url) as c:
                while not stop.is_set():
                    t = time.perf_counter()
                    assert c.get(key_path("probe", "k")).status_code == 200
                    latencies.append(time.perf_counter() - t)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            time.sleep(1.5)  # a baseline: reads before anything has expired
            baseline = sorted(latencies)
            latencies.clear()
            http.post("/_testing/clock", json={"advance": TTL + 1})
            deadline = time.monotonic() + 60
            while "housekeeping purged" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join()
        assert "housekeeping purged 3000 expired entries" in server.log(), server.log()[-2000:]
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            left = conn.execute(
                "SELECT count(*) FROM bw_entries WHERE expires_at IS NOT NULL"
            ).fetchone()[0]
        finally:
            conn.close()
        assert left == 0
        latencies.sort()
        print(
            f"FIGURE reads before housekeeping: {len(baseline)}, p50 "
            f"{baseline[len(baseline) // 2] * 1000:.1f} ms, max {baseline[-1] * 1000:.1f} ms"
        )
        print(
            f"FIGURE housekeeping round of {NAMESPACES} namespaces on a live SQLite server: "
            f"{len(latencies)} reads meanwhile, p50 {latencies[len(latencies) // 2] * 1000:.1f}"
            f" ms, max {latencies[-1] * 1000:.1f} ms"
        )
