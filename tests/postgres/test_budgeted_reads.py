"""A batch of gets through the server on PostgreSQL (``get_many``, a LangGraph ``get_tuple``):
its response budget is looked up by the statement that reads it
(``Engine.read_many_within_query``), one round trip where the budget's own look-up was a second
one before every batch; over the budget nothing is read and the answer is the same 413.

Measured (2026-12-05, sequential ``get_many`` over HTTP, 4 rounds of 1,000): 4 keys 0.99 ->
0.79 ms and the server's CPU 640 -> 500 µs a batch; 20 keys 1.49 -> 1.08 ms, 980 -> 680 µs.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import psycopg
import pytest
from support.postgres import rows_read
from support.server import running_server
from support.turns import relayed

from botwire import Memory, ValueTooLarge
from botwire.store import Op
from botwire_server.storage._pg_common import pg_sql
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def _fill(mem: Memory) -> list[str]:
    """Values, a list, an expired key; the keys of a batch naming them, a missing key and a
    repeat."""
    mem.set_many({f"k{i}": {"v": "x" * 100, "i": i} for i in range(20)})
    mem.append("l", "a", "b", "c")
    mem.set("gone", 1, ttl=0.05)
    time.sleep(0.1)
    return [f"k{i}" for i in range(20)] + ["l", "missing", "gone", "k0"]


def test_a_batch_of_gets_is_one_round_trip(postgres_url: str) -> None:
    ns = f"budget-{uuid.uuid4().hex[:8]}"
    with (
        relayed(postgres_url) as (url, relay),
        running_server("--max-response-bytes", "100000", database=url) as server,
        contextlib.closing(PostgresStore(postgres_url)) as direct,
    ):
        mem = Memory(ns, url=server.url)
        keys = _fill(mem)
        expected = Memory(ns, store=direct).get_many(keys)
        assert set(expected) == {*keys} - {"missing", "gone"}
        for _ in range(6):  # past psycopg's prepare threshold: the statement is prepared
            assert mem.get_many(keys) == expected
        relay.take()
        assert mem.get_many(keys) == expected
        assert mem.entries(keys[:3])["k1"].value == {"v": "x" * 100, "i": 1}
        assert relay.take() == 2  # one each: the sizes ride with the read


def test_over_the_budget_nothing_is_read_and_the_answer_is_413(postgres_url: str) -> None:
    """Over the budget: one round trip, which reads the sizes only, and the 413 that names
    the limit. Between ``LARGE_ANSWER`` (1 MiB, read in a worker thread) and the budget: the
    gate's round trip, then the read."""
    ns = f"budget-{uuid.uuid4().hex[:8]}"
    with (
        relayed(postgres_url) as (url, relay),
        running_server("--max-response-bytes", "3000000", database=url) as server,
    ):
        mem = Memory(ns, url=server.url)
        big = "y" * 700_000
        mem.set("big", big)
        mem.set("small", 1)
        relay.take()
        with pytest.raises(ValueTooLarge) as caught:
            mem.get_many(["big"] * 5 + ["small"])
        assert relay.take() == 1
        error = caught.value
        assert error.namespace == ns and "max_response_bytes" in str(error)
        assert "would answer" in str(error) and "get_many in smaller chunks" in str(error)
        assert mem.get_many(["big", "big", "small"]) == {"big": big, "small": 1}  # 1.4 MB
        assert relay.take() == 2
        assert mem.get_many(["small", "small"]) == {"small": 1}
        assert relay.take() == 1


@pytest.mark.parametrize("analyzed", [False, True], ids=["stale-statistics", "analyzed"])
def test_the_budgeted_read_looks_up_only_the_keys_it_names(
    fresh_postgres_url: str, analyzed: bool
) -> None:
    """The statement's plan, with the statistics of a table that grew since it was last
    analyzed (the case ``test_budget_plan`` guards for the budget alone): within the budget it
    reads each named entry twice (its size, then itself) and no other; over the budget it
    reads the sizes only, no entry's items. The same for the unbudgeted read of several keys
    (coalesced GETs): as a plain join, with stale statistics, both read all 2,001 entries."""
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE bw_entries SET (autovacuum_enabled = false)")
            conn.execute("ALTER TABLE bw_items SET (autovacuum_enabled = false)")
        mem = Memory("langgraph", store=store)
        for start in range(0, 2000, 500):
            store.batch(
                "langgraph",
                [
                    Op("set", f"t/{i}/cp", value=json.dumps({"i": i}))
                    for i in range(start, start + 500)
                ],
            )
        mem.append("t/list", *range(300))
        if analyzed:
            with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
                conn.execute("ANALYZE bw_entries; ANALYZE bw_items")
        keys = [f"t/{i}/cp" for i in range(0, 2000, 160)] + ["t/list", "t/missing"]
        pairs = [("langgraph", k) for k in keys]
        size = store.stored_bytes("langgraph", keys)
        now = store.clock()
        statements = [
            (store.engine.read_many_within_query(pairs, now, size), 2 * len(keys), 300),
            (store.engine.read_many_within_query(pairs, now, size - 1), len(keys), 0),
            (store.engine.read_many_query(pairs, now), len(keys), 300),  # GETs, unbudgeted
        ]
        for (sql, params), reads, items in statements:
            with psycopg.connect(fresh_postgres_url) as conn:
                (explained,) = conn.execute(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + pg_sql(sql), params
                ).fetchone()  # type: ignore[misc]
            plan = explained[0]["Plan"]
            shown = json.dumps(explained, indent=1)
            assert rows_read(plan, "bw_entries") <= reads, shown
            assert rows_read(plan, "bw_items") == items, shown


def test_the_budget_counts_no_expired_entry_on_the_database_clock(fresh_postgres_url: str) -> None:
    """A store on the database's clock (a server's) passes the budget's look-up an offset to
    that clock, not a time: the look-up once compared ``expires_at`` with the offset and counted
    every expired entry not yet purged."""
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        mem = Memory("ns", store=store)
        mem.set("gone", "z" * 1000, ttl=0.05)
        mem.set("kept", 1)
        time.sleep(0.1)
        assert store.stored_bytes("ns", ["gone"]) == 0
        assert store.stored_bytes("ns", ["gone", "kept"]) == store.stored_bytes("ns", ["kept"]) > 0
