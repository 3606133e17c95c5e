"""On SQLite too, housekeeping finds the namespaces with a retention policy of their own through
their index (issue 22, ``POLICY_INDEXES``): the purge every 512 writes no longer reads every
namespace's row. The indexes are made on every open, so a file an older release made gets them
(and an older release ignores them)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from support.recorded import RecordedTx

from botwire import Memory
from botwire.store import SQLiteStore

NAMESPACES = 20_000


def test_housekeeping_looks_up_the_namespaces_with_a_policy_by_index(tmp_path: Path) -> None:
    path = tmp_path / "policies.db"
    with contextlib.closing(SQLiteStore(path)) as store:
        Memory("idle-one", store=store).set("k", 1)
        Memory("idle-one", store=store).set_policy(max_idle=60)
        Memory("chat-one", store=store).set_policy(max_list_len=100)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)"
            " INSERT INTO bw_namespaces (ns, keys, bytes, day, writes, written_at)"
            " SELECT 'user-' || i, 1, 10, 0, 1, 0 FROM g",
            (NAMESPACES,),
        )
        conn.execute("ANALYZE")
        conn.commit()
    with contextlib.closing(SQLiteStore(path)) as store:
        engine, tx = store.engine, RecordedTx()
        engine.idle_namespaces(tx, store.clock(), 100)  # type: ignore[arg-type]
        engine.long_lists(tx, 100)  # type: ignore[arg-type]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            for (sql, params), index in zip(
                tx.sent, ["bw_namespaces_idle_policy", "bw_namespaces_len_policy"], strict=True
            ):
                plan = " | ".join(
                    row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)
                )
                assert f"USING INDEX {index}" in plan, (sql, plan)
        # what the index finds is what housekeeping clears: nothing is idle for 60 s yet
        assert store.purge_expired() == 0
        assert Memory("idle-one", store=store).get("k") == 1


def test_a_file_without_the_indexes_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "older.db"
    with contextlib.closing(SQLiteStore(path)):
        pass
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP INDEX bw_namespaces_idle_policy")
        conn.execute("DROP INDEX bw_namespaces_len_policy")
        conn.commit()
    with contextlib.closing(SQLiteStore(path)):
        pass
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"bw_namespaces_idle_policy", "bw_namespaces_len_policy"} <= names
