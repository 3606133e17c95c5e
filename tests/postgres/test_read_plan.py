"""Reading an entry on PostgreSQL reads a list's items only for a list, by that list's index,
whatever the statistics say and whichever plan PostgreSQL caches.

Each read joins ``bw_entries`` to ``bw_items`` (a list's value is its items). Written as a plain
``LEFT JOIN``, once ``ANALYZE`` had seen one long list fill ``bw_items``, the planner read the
items of *any* entry by a scan of the whole table: a value's GET beside a 100,000-item list went
from 0.6 to 16 ms, and a ``get_many`` of 200 values from 32 ms to 2.7 s (found by the long
``kill -9`` storm of ``tests/reliability/test_crash.py``, whose read-backs stopped finishing).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import psycopg
import pytest
from support.postgres import rows_read

from botwire.store import Op
from botwire_server.storage._pg_prepare import numbered
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

NS = "chat"
ITEMS = 20_000


def _explained(url: str, sql: str, params: list[Any], mode: str) -> dict[str, Any]:
    """The executed plan of ``sql`` (``?`` placeholders) as a prepared statement, its plan
    chosen as ``plan_cache_mode`` ``mode`` says (custom: for these values; generic: for any)."""
    with psycopg.connect(url) as conn:  # a transaction rolled back: a DELETE is undone
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute(f"PREPARE q AS {numbered(sql)}")
        args = psycopg.ClientCursor(conn).mogrify(", ".join(["%s"] * len(params)), params)
        (explained,) = conn.execute(  # type: ignore[misc]
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE q({args})".encode()
        ).fetchone()
        conn.rollback()
        return explained[0]["Plan"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_a_value_beside_a_long_list_reads_no_items(fresh_postgres_url: str, mode: str) -> None:
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        store.batch(NS, [Op("set", f"v{i}", value=json.dumps({"i": i})) for i in range(50)])
        store.batch("other", [Op("set", "v", value="1")])
        for start in range(0, ITEMS, 1000):
            items = tuple(json.dumps(f"m{i}") for i in range(start, start + 1000))
            store.batch(NS, [Op("append", "log", items=items)])
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute("ANALYZE")  # the statistics now see one list holding bw_items
        engine = store.engine
        for ns, key in ((NS, "v7"), ("other", "v")):
            sql, params = engine.read_query(ns, key, None, 0.0)
            plan = _explained(fresh_postgres_url, sql, list(params), mode)
            assert rows_read(plan, "bw_items") == 0, (ns, key, json.dumps(plan, indent=1))
        sql, params = engine.read_many_query([(NS, f"v{i}") for i in range(50)], 0.0)
        plan = _explained(fresh_postgres_url, sql, list(params), mode)
        assert rows_read(plan, "bw_items") == 0, json.dumps(plan, indent=1)
        # the list itself: its items, each read once, by its own index
        sql, params = engine.read_query(NS, "log", None, 0.0)
        plan = _explained(fresh_postgres_url, sql, list(params), mode)
        assert rows_read(plan, "bw_items") == ITEMS, json.dumps(plan, indent=1)
        sql, params = engine.read_query(NS, "log", 20, 0.0)
        plan = _explained(fresh_postgres_url, sql, list(params), mode)
        assert rows_read(plan, "bw_items") == 20, json.dumps(plan, indent=1)
        assert store.get(NS, "v7").value == {"i": 7}  # type: ignore[union-attr]
        entry = store.get(NS, "log", tail=2)
        assert entry is not None and entry.value == [f"m{ITEMS - 2}", f"m{ITEMS - 1}"]


def _index_entries(plan: dict[str, Any], index: str) -> int:
    """Entries an executed plan's scans of ``index`` found (returned or filtered)."""
    read = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    read += plan.get("Rows Removed by Filter", 0)
    own = read if plan.get("Index Name") == index else 0
    return own + sum(_index_entries(p, index) for p in plan.get("Plans", []))


def _beside_a_long_list(url: str, store: PostgresStore, long: int) -> None:
    """Namespace "big": a ``long``-item list, a 3-item list and a value; 30 small namespaces
    of a 500-item list each; the statistics taken."""
    for start in range(0, long, 1000):
        items = tuple(json.dumps(i) for i in range(start, start + 1000))
        store.batch("big", [Op("append", "long", items=items)])
    store.batch("big", [Op("append", "short", items=("1", "2", "3")), Op("set", "v", value="1")])
    for n in range(30):  # small namespaces: the statistics' idea of a namespace
        items = tuple(json.dumps(i) for i in range(500))
        store.batch(f"small-{n}", [Op("append", "l", items=items)])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_a_list_is_read_by_its_own_index_not_its_namespaces(
    fresh_postgres_url: str, mode: str
) -> None:
    """Never by ``bw_items_ns`` (every item of the namespace; ``clear`` uses it). Found
    2026-12-06: once the statistics had seen one namespace hold far more items than the others,
    ``tail(20)`` of its 100,000-item list ANDed the list's 20 index entries with the
    namespace's 100,000 (1.3 ms for 20 rows, on either plan; 0.1 ms now). The heap rows read
    were 20 all along, which is all the test above counts."""
    long = 100_000
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        _beside_a_long_list(fresh_postgres_url, store, long)
        engine, pairs = store.engine, [("big", "short"), ("big", "v"), ("big", "missing")]
        reads = {
            "tail(20) of the long list": (engine.read_query("big", "long", 20, 0.0), 20),
            "the short list": (engine.read_query("big", "short", None, 0.0), 3),
            "tail(2) of the short list": (engine.read_query("big", "short", 2, 0.0), 2),
            "a batch": (engine.read_many_query(pairs, 0.0), 3),
            "a budgeted batch": (engine.read_many_within_query(pairs, 0.0, 10**6), 3),
        }
        for what, ((sql, params), items_read) in reads.items():
            plan = _explained(fresh_postgres_url, sql, list(params), mode)
            shown = f"{what}\n{json.dumps(plan, indent=1)}"
            assert _index_entries(plan, "bw_items_ns") == 0, shown
            assert _index_entries(plan, "bw_items_list") == items_read, shown
        entry = store.get("big", "long", tail=2)
        assert entry is not None and entry.value == [long - 2, long - 1]


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_a_list_s_rows_are_removed_by_its_own_index(fresh_postgres_url: str, mode: str) -> None:
    """The writes that remove a list's rows (its drop, a trim, a pop) find them by the list's
    index too. Found 2026-12-06: a list dropped beside a 100,000-item list, on the generic plan
    (the writes' statements are prepared once hot), scanned the namespace's 100,000 entries of
    ``bw_items_ns`` and filtered them all (7.4 ms; 0.05 ms now)."""
    from botwire.store._sqlrows import ListRows

    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        _beside_a_long_list(fresh_postgres_url, store, 100_000)
        rows = ListRows(hashed=True)
        plans = {
            "drop the short list": (rows.plan_drop("big", "short", 3, 3), 3),
            "drop a list with no rows": (rows.plan_drop("big", "none", 0, 0), 0),
            "trim the long list by one": (rows.plan_trim("big", "long", 0, 100_000, 99_999, 0), 1),
        }
        for what, (plan, found) in plans.items():
            _, sql, params = next(plan)
            explained = _explained(fresh_postgres_url, sql, list(params), mode)
            shown = f"{what}\n{json.dumps(explained, indent=1)}"
            assert _index_entries(explained, "bw_items_ns") == 0, shown
            assert _index_entries(explained, "bw_items_list") == found, shown
        where, params = rows.match("big", "long")
        pop = f"DELETE FROM bw_items WHERE {where} AND seq = ? RETURNING value, bytes"
        explained = _explained(fresh_postgres_url, pop, [*params, 99_999], mode)
        assert _index_entries(explained, "bw_items_ns") == 0, json.dumps(explained, indent=1)
        entry = store.get("big", "long", tail=1)
        assert entry is not None and entry.value == [99_999]  # nothing was removed
