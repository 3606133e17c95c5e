"""The compatibility listing (``GET /memory/{ns}``, ``recent_keys``) reads the change feed's
``(ns, version)`` index, newest first in commit order. The index of update times it read before
issue 22 (``bw_entries_recent``) made every write of an entry add an entry to one more index
(115 B of disk per chat message on PostgreSQL): it is gone from new databases and dropped when an
older one is opened, on both engines, without losing a key, and without holding up a start on
a busy PostgreSQL (the drop waits at most ``_DROP_LOCK_TIMEOUT``, then the next start tries).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from botwire.store import Op, SQLiteStore
from botwire_server.storage import _pg_schema
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

OLD_PG_INDEX = "CREATE INDEX bw_entries_recent ON bw_entries (ns, updated_at, version, key)"
OLD_SQLITE_INDEX = "CREATE INDEX bw_entries_recent ON bw_entries (ns, updated_at, version)"


class StepClock:
    """A clock set by hand, backwards too (a replica whose clock lags)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _pg_has_index(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('bw_entries_recent')").fetchone()
    return row is not None and row[0] is not None


def _sqlite_has_index(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'bw_entries_recent'"
        ).fetchone()
    return found is not None


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: Any, tmp_path: Path, fresh_postgres_url: str) -> Iterator[Any]:
    """``open(clock=None)`` a store of the parametrized engine on one database (fresh per
    test); ``has_index()`` and ``add_old_index()`` look at and change its schema directly."""
    stores: list[Any] = []
    path = tmp_path / "recent.db"

    class Opener:
        kind = request.param

        def open(self, clock: Any = None) -> Any:
            if self.kind == "sqlite":
                store: Any = SQLiteStore(path, **({"clock": clock} if clock else {}))
            else:
                store = PostgresStore(fresh_postgres_url, clock=clock)
            stores.append(store)
            return store

        def has_index(self) -> bool:
            if self.kind == "sqlite":
                return _sqlite_has_index(path)
            return _pg_has_index(fresh_postgres_url)

        def add_old_index(self) -> None:
            """The index as the previous release left it (created at start, schema 2)."""
            if self.kind == "sqlite":
                with sqlite3.connect(path) as conn:
                    conn.execute(OLD_SQLITE_INDEX)
            else:
                with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
                    conn.execute(OLD_PG_INDEX)

        def plan(self, ns: str) -> str:
            """The plan of the listing's statement, as the engine sends it."""
            query = next(
                c for c in _recent_statement() if isinstance(c, str) and c.startswith("SELECT key")
            )
            if self.kind == "sqlite":
                with sqlite3.connect(path) as conn:
                    rows = conn.execute("EXPLAIN QUERY PLAN " + query, (ns, 0.0, 1)).fetchall()
                return " ".join(str(r[-1]) for r in rows)
            with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
                conn.execute("ANALYZE bw_entries")
                sql = query.replace("?", "%s")
                rows = conn.execute("EXPLAIN " + sql, (ns, 0.0, 1)).fetchall()
            return " ".join(str(r[0]) for r in rows)

    yield Opener()
    for store in stores:
        store.close()


def _recent_statement() -> tuple[Any, ...]:
    from botwire.store._sql import Engine

    return Engine.recent_keys.__code__.co_consts


def test_a_new_database_has_no_index_of_update_times(opener: Any) -> None:
    store = opener.open()
    store.batch("ns", [Op("set", "k", value="1")], atomic=True)
    assert not opener.has_index()


def test_an_older_database_loses_the_index_on_open_and_keeps_every_key(opener: Any) -> None:
    store = opener.open()
    store.batch("ns", [Op("set", f"k{i}", value=str(i)) for i in range(50)], atomic=True)
    store.batch("ns", [Op("append", "list", items=('"a"', '"b"'))], atomic=True)
    before = store.list_keys("ns", limit=100)
    store.close()
    opener.add_old_index()
    assert opener.has_index()
    store = opener.open()
    assert not opener.has_index()
    assert store.list_keys("ns", limit=100) == before
    assert [k for k, _, _ in store.recent_keys("ns", 2)] == ["list", "k9"]
    # and an older release opening it again may create it: both work with or without it
    store.close()
    opener.add_old_index()
    store = opener.open()
    assert not opener.has_index()


def test_newest_first_in_commit_order_even_when_the_clock_went_back(opener: Any) -> None:
    """A write committed later is newer, whatever the writer's clock said (a lagging replica,
    an NTP step): before issue 22 the listing sorted by the clock and put it last."""
    clock = StepClock(1_000_000.0)
    store = opener.open(clock=clock)
    store.batch("ns", [Op("set", "first", value="1")], atomic=True)
    clock.now -= 600  # ten minutes back
    store.batch("ns", [Op("set", "second", value="2")], atomic=True)
    store.batch("ns", [Op("set", k, value="3") for k in ("x", "z", "y")], atomic=True)
    recent = store.recent_keys("ns", 10)
    # one batch shares a version: its keys in descending key order
    assert [k for k, _, _ in recent] == ["z", "y", "x", "second", "first"]
    assert recent[-1][2] == 1_000_000.0 and recent[-2][2] == 999_400.0  # their own times


def test_the_listing_reads_along_the_version_index(opener: Any) -> None:
    store = opener.open()
    wide = [Op("set", f"k{i:05}", value="0") for i in range(3000)]
    for start in range(0, len(wide), 500):
        store.batch("wide", wide[start : start + 500], atomic=True)
    store.batch("wide", [Op("set", "a-newest", value="0")], atomic=True)
    plan = opener.plan("wide")
    assert "bw_entries_version" in plan, plan
    if opener.kind == "sqlite":
        assert "TEMP B-TREE" not in plan, plan  # the index's entries end with the key
    else:
        # only the keys sharing a version are sorted (Incremental Sort), never the namespace
        assert "Index Scan Backward using bw_entries_version" in plan, plan
        assert not re.search(r"(?<!Incremental )Sort  \(", plan), plan
    assert [k for k, _, _ in store.recent_keys("wide", 3)] == ["a-newest", "k02999", "k02998"]


@pytest.mark.timeout(60)  # a drop that waits for the lock forever would hang the start
def test_a_busy_table_leaves_the_index_for_the_next_start_without_holding_it_up(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica of the previous release reading ``bw_entries`` holds the drop back: the new
    replica starts anyway, serves, says so, and the next start drops it."""
    PostgresStore(fresh_postgres_url).close()
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(OLD_PG_INDEX)
    monkeypatch.setattr(_pg_schema, "_DROP_LOCK_TIMEOUT", "300ms")
    holder = psycopg.connect(fresh_postgres_url)
    try:
        holder.execute("SELECT count(*) FROM bw_entries")  # ACCESS SHARE, until the rollback
        with caplog.at_level(logging.WARNING, logger="botwire_server"):
            store = PostgresStore(fresh_postgres_url)
        try:
            ns = f"busy-{uuid.uuid4().hex[:6]}"
            store.batch(ns, [Op("set", "k", value="1")], atomic=True)
            assert [k for k, _, _ in store.recent_keys(ns, 5)] == ["k"]
        finally:
            store.close()
        assert _pg_has_index(fresh_postgres_url)
        assert any("bw_entries_recent" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        holder.rollback()
        holder.close()
    PostgresStore(fresh_postgres_url).close()
    assert not _pg_has_index(fresh_postgres_url)


def test_a_role_that_does_not_own_the_index_still_starts_and_says_so(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The schema created by one role, the server run by another that may write the tables
    (and create in the schema, as botwire needs) but owns nothing: it serves, and the warning
    names the statement to run as the owner."""
    PostgresStore(fresh_postgres_url).close()
    role = f"bw_writer_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
        admin.execute(OLD_PG_INDEX)
        admin.execute(f"CREATE ROLE {role} LOGIN")
        database = admin.info.dbname
        admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    as_role = psycopg.conninfo.make_conninfo(fresh_postgres_url, user=role)
    try:
        with caplog.at_level(logging.WARNING, logger="botwire_server"):
            store = PostgresStore(as_role)
        try:
            store.batch("ns", [Op("set", "k", value="1")], atomic=True)
            assert [k for k, _, _ in store.recent_keys("ns", 5)] == ["k"]
        finally:
            store.close()
        assert _pg_has_index(fresh_postgres_url)
        assert any("DROP INDEX bw_entries_recent" in r.getMessage() for r in caplog.records)
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
