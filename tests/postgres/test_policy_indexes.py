"""Housekeeping finds the namespaces with a retention policy of their own through their index,
not by reading every namespace's row (issue 22, ``POLICY_INDEXES``, schema 8).

Every 512 writes a store purges one batch inside a request, and every housekeeping round runs
the whole purge; both look for idle namespaces (``max_idle``) and lists over their namespace's
``max_list_len``. Without an index each look read every row of ``bw_namespaces``: at 500,000
namespaces 28 ms (idle) and 19 ms (long lists) of PostgreSQL per purge, ~50 ms in all, ten
times a second under a write load of 5,000/s. The namespaces with a policy are found through
a partial index, and the one that is due is still found and cleared.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
import pytest
from support.postgres import rows_read
from support.recorded import RecordedTx

from botwire import Memory
from botwire_server.storage._pg_common import pg_sql
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

NAMESPACES = 20_000


def _read_of_namespaces(url: str, call: Any) -> list[int]:
    """Rows of ``bw_namespaces`` each statement of ``call(tx)`` reads, as executed."""
    tx = RecordedTx()
    call(tx)
    assert tx.sent, "the call sent no statement"
    out = []
    with psycopg.connect(url) as conn:
        for sql, params in tx.sent:
            (explained,) = conn.execute(  # type: ignore[misc]
                "EXPLAIN (ANALYZE, FORMAT JSON) " + pg_sql(sql), params
            ).fetchone()
            out.append(rows_read(explained[0]["Plan"], "bw_namespaces"))
    return out


def test_housekeeping_reads_only_the_namespaces_with_a_policy(fresh_postgres_url: str) -> None:
    """On a table PostgreSQL has analyzed (autovacuum analyzes ``bw_namespaces`` soon after it
    grows: every write updates a row of it); never analyzed, the planner takes most rows for
    having a policy and may still read them all."""
    with contextlib.closing(PostgresStore(fresh_postgres_url)) as store:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes, written_at)"
                " SELECT 'user-' || g, 1, 10, 0, 1, extract(epoch from now())"
                " FROM generate_series(1, %s) g",
                (NAMESPACES,),
            )
            conn.execute("ANALYZE bw_namespaces")
        idle, chat = Memory("idle-one", store=store), Memory("chat-one", store=store)
        idle.set("k", 1)
        idle.set_policy(max_idle=1e-3)  # idle from the next instant on
        chat.append("history", *range(5))
        chat.set_policy(max_list_len=100)
        engine, now = store.engine, store.clock()
        reads = _read_of_namespaces(
            fresh_postgres_url, lambda tx: engine.idle_namespaces(tx, now, 100)
        ) + _read_of_namespaces(fresh_postgres_url, lambda tx: engine.long_lists(tx, 100))
        assert all(read <= 2 for read in reads), (
            f"housekeeping read {reads} rows of bw_namespaces ({NAMESPACES} namespaces, two "
            "with a policy): it scans every namespace instead of the policy indexes"
        )
        # what the indexes find is still what housekeeping clears, and only that
        store.purge_expired()
        assert idle.get("k") is None
        assert chat.get("history") == list(range(5))


def test_a_database_of_schema_7_gets_the_policy_indexes(fresh_postgres_url: str) -> None:
    """An existing database is migrated: the indexes are made, and the schema is 8."""
    with contextlib.closing(PostgresStore(fresh_postgres_url)):
        pass
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute("DROP INDEX bw_namespaces_idle_policy, bw_namespaces_len_policy")
        conn.execute("UPDATE bw_meta SET schema = 7")
    with contextlib.closing(PostgresStore(fresh_postgres_url)):
        pass
    with psycopg.connect(fresh_postgres_url) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'bw_namespaces'"
            ).fetchall()
        }
        assert {"bw_namespaces_idle_policy", "bw_namespaces_len_policy"} <= names
        assert conn.execute("SELECT schema FROM bw_meta").fetchone() == (8,)
