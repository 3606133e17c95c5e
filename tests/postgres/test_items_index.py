"""Schema 7 (issue 22): on PostgreSQL a list's items are found by a hash of the list's name and
``seq`` (``bw_items_list``), and a namespace's by ``ns`` (``bw_items_ns``); a new database has
no ``(ns, key, seq)`` primary key (about a third of a chat message's bytes), an upgraded one
keeps it until its operator drops it, and is told how.

Each statement the store sends to find a list's items is asked for its plan with sequential
scans disabled: one that could not use ``bw_items_list`` (say, a read that lost the hash
condition) falls back to another index or a scan, and the test names it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

import psycopg
import pytest

from botwire.store import Op
from botwire.store._sqltext import list_hash
from botwire_server.storage._pg_common import pg_sql
from botwire_server.storage._pg_schema import ITEMS_SCHEMA
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

LISTS = [("user-1", "chat"), ("user-1", "notes"), ("user-2", "chat"), ("a", "bc"), ("ab", "c")]


def _fill(store: PostgresStore) -> None:
    for i in range(30):
        for ns, key in LISTS:
            store.batch(ns, [Op("append", key, items=[json.dumps({"i": i, "of": f"{ns}/{key}"})])])


def _indexes(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'bw_items'")
        return {r[0] for r in rows}


def _plan(url: str, sql: str, params: list[Any] | tuple[Any, ...]) -> str:
    with psycopg.connect(url, autocommit=True) as conn:  # statistics, as autovacuum keeps them
        conn.execute("ANALYZE bw_items")
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute("EXPLAIN " + pg_sql(sql), params).fetchall()
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def test_a_new_database_keys_items_by_the_list_hash(fresh_postgres_url: str) -> None:
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        _fill(store)
        for ns, key in LISTS:  # ("a", "bc") and ("ab", "c") hash apart, and read apart
            items = store.batch(ns, [Op("get", key)])[0]["value"]
            assert [x["i"] for x in items] == list(range(30)), (ns, key)
            assert {x["of"] for x in items} == {f"{ns}/{key}"}, (ns, key)
    assert _indexes(fresh_postgres_url) == {"bw_items_list", "bw_items_ns"}


def test_every_statement_that_finds_a_list_uses_its_index(fresh_postgres_url: str) -> None:
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        _fill(store)
        engine = store.engine
        where, params = engine.rows.match("user-1", "chat")
        statements: dict[str, tuple[str, Any]] = {
            "read": engine.read_query("user-1", "chat", None, 0.0),
            "read tail": engine.read_query("user-1", "chat", 5, 0.0),
            "read in a write": engine.read_query("user-1", "chat", None, 0.0, in_tx=True),
            "read tail in a write": engine.read_query("user-1", "chat", 5, 0.0, in_tx=True),
            "read many": engine.read_many_query([("user-1", "chat"), ("user-2", "chat")], 0.0),
            "pop": (f"DELETE FROM bw_items WHERE {where} AND seq = ?", (*params, 29)),
        }
        drop = next(engine.rows.plan_drop("user-1", "chat", 30, 30))
        statements["drop"] = (drop[1], drop[2])
        trim = next(engine.rows.plan_trim("user-1", "chat", 0, 30, 10, 0))
        statements["trim"] = (trim[1], trim[2])
        for name, (sql, args) in statements.items():
            plan = _plan(fresh_postgres_url, sql, args)
            assert "bw_items_list" in plan, f"{name} does not use bw_items_list:\n{plan}"
            # the hash is not unique: the list's own name is compared too, so a collision
            # (not constructible here: 64 bits) costs a filtered row, never another's items;
            # with IS NOT DISTINCT FROM, which no index serves, so bw_items_ns (every item of
            # the namespace) is never ANDed with the list's index (test_read_plan.py)
            compared = r"\((i\.)?ns, (i\.)?key\) IS NOT DISTINCT FROM \("
            assert re.search(compared, sql), name
        clear = _plan(fresh_postgres_url, "DELETE FROM bw_items WHERE ns = ?", ("user-1",))
        assert "bw_items_ns" in clear, clear
    # the pop above ran as its own statement: the op itself is whole
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        assert store.batch("user-1", [Op("pop", "chat")])[0]["value"]["i"] == 29
        assert len(store.batch("user-1", [Op("get", "chat")])[0]["value"]) == 29


def test_the_hash_condition_is_the_one_the_index_holds(fresh_postgres_url: str) -> None:
    """The index's expression and the statements' are the same text (``list_hash``), and
    PostgreSQL computes it for a name the statements bind: a change to one side would leave
    the index unused (the plans above) or, worse, differ in value."""
    with (
        contextlib.closing(PostgresStore(fresh_postgres_url)),
        psycopg.connect(fresh_postgres_url, autocommit=True) as conn,
    ):
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'bw_items_list'"
        ).fetchone()
        assert row is not None and "hashtextextended" in row[0], row
        bound = conn.execute(
            f"SELECT {list_hash('%s::text', '%s::text')}", ("user-1", "chat")
        ).fetchone()
        inline = conn.execute("SELECT " + list_hash("'user-1'", "'chat'")).fetchone()
        assert bound == inline


def test_an_upgraded_database_keeps_its_primary_key_and_is_told(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        _fill(store)
    # the database as schema 6 left it: the primary key, neither of schema 7's indexes
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute("DROP INDEX bw_items_list")
        conn.execute("DROP INDEX bw_items_ns")
        conn.execute("ALTER TABLE bw_items ADD PRIMARY KEY (ns, key, seq)")
        conn.execute("UPDATE bw_meta SET schema = %s", (ITEMS_SCHEMA - 1,))
    with (
        caplog.at_level(logging.INFO, logger="botwire_server"),
        contextlib.closing(PostgresStore(fresh_postgres_url)) as store,
    ):
        assert len(store.batch("user-1", [Op("get", "chat")])[0]["value"]) == 30
        store.batch("user-1", [Op("append", "chat", items=[json.dumps({"i": 30})])])
    told = [r for r in caplog.records if "DROP CONSTRAINT bw_items_pkey" in r.getMessage()]
    assert [r.levelno for r in told] == [logging.WARNING], caplog.text
    assert _indexes(fresh_postgres_url) == {"bw_items_pkey", "bw_items_list", "bw_items_ns"}
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="botwire_server"),
        contextlib.closing(PostgresStore(fresh_postgres_url)),
    ):
        pass  # the next start says it again, quietly
    told = [r for r in caplog.records if "DROP CONSTRAINT bw_items_pkey" in r.getMessage()]
    assert [r.levelno for r in told] == [logging.INFO], caplog.text
    # the operator drops it, as told: nothing is lost, nothing more is said
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE bw_items DROP CONSTRAINT bw_items_pkey")
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="botwire_server"),
        contextlib.closing(PostgresStore(fresh_postgres_url)) as store,
    ):
        items = store.batch("user-1", [Op("get", "chat")])[0]["value"]
        assert [x["i"] for x in items] == list(range(31))
    assert "bw_items_pkey" not in caplog.text
