"""A batch's response budget (``Engine.plan_stored_bytes``) is looked up key by key on
PostgreSQL, whatever the table's statistics say.

The budget is checked before a batch of gets is read (LangGraph's ``get_tuple`` reads a
checkpoint, its writes and its blobs as one batch). Its statement once named the keys as
``key IN (...)``: on a table that grew since PostgreSQL last analyzed it, which is every new
deployment for a while and any namespace the statistics call small, the planner read the
whole namespace through ``bw_entries_version`` and filtered it by key. Measured under P10:
0.9 ms of PostgreSQL per ``get_tuple`` at ~1,100 entries, growing with the namespace. Each key
is now a primary-key look-up of its own.
"""

from __future__ import annotations

import contextlib
import json

import psycopg
import pytest
from support.postgres import rows_read

from botwire.store import Op
from botwire_server.storage._pg_common import pg_sql
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

NS = "langgraph"
ENTRIES = 2_000


@pytest.mark.parametrize("analyzed", [False, True], ids=["stale-statistics", "analyzed"])
def test_the_budget_reads_only_the_keys_it_names(fresh_postgres_url: str, analyzed: bool) -> None:
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            # the statistics of a table that grew since it was last analyzed, kept so
            conn.execute("ALTER TABLE bw_entries SET (autovacuum_enabled = false)")
        for start in range(0, ENTRIES, 500):
            ops = [
                Op("set", f"t/{i}/cp", value=json.dumps({"i": i}))
                for i in range(start, start + 500)
            ]
            store.batch(NS, ops)
        if analyzed:
            with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
                conn.execute("ANALYZE bw_entries")
        keys = [f"t/{i}/cp" for i in range(0, ENTRIES, 160)] + ["t/missing/cp"]
        plan = store.engine.plan_stored_bytes(NS, keys, 0.0)
        statements = []
        with contextlib.suppress(StopIteration):
            step = next(plan)
            while True:
                statements.append(step)
                with psycopg.connect(fresh_postgres_url) as conn:
                    sql, params = pg_sql(step[1]), step[2]
                    (explained,) = conn.execute(
                        "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params
                    ).fetchone()  # type: ignore[misc]
                    rows = conn.execute(sql, params).fetchall()
                read = rows_read(explained[0]["Plan"], "bw_entries")
                assert read <= len(keys), (
                    f"the budget read {read} rows of bw_entries for {len(keys)} keys:\n"
                    f"{json.dumps(explained, indent=1)}"
                )
                step = plan.send(rows)
        assert len(statements) == 1
        assert store.stored_bytes(NS, keys) == sum(store.stored_bytes(NS, [k]) for k in keys) > 0
