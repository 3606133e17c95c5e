"""Where PostgreSQL's own time goes under P10's workload: ``pg_stat_statements`` per statement
(issue 22's evidence, beside ``pg_pyspy.py`` for the server's Python).

A durable throwaway cluster (fsync, synchronous_commit and full_page_writes on, as for P10-P15)
is restarted with ``pg_stat_statements`` (and ``track_planning``) preloaded; a real
``botwire-server`` on it serves P10's LangGraph graph (``_pg_worker.task_graph``: a 10-node
chain, ``durability="sync"``, ``BotWireSaver``) run in this process. After a warm-up the counters
are reset, ``--invokes`` invocations run, and the statements are printed by the time PostgreSQL
spent on them: calls per invoke, execution and planning time per call, WAL bytes per call.

    uv run python benchmarks/pg_statements.py [--invokes 40] [--top 20]

Read the execution time of the namespace lock as *waiting* as much as working: a statement's
time includes the time it waited for a row lock another transaction held.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pg_worker
from _common import _as_url, log, server
from pg_reference import proc_cpu

PRELOAD = " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
REPORT = (
    "SELECT calls, total_exec_time, total_plan_time, wal_bytes,"
    " left(regexp_replace(query, '\\s+', ' ', 'g'), %s)"
    " FROM pg_stat_statements WHERE calls > 0"
    " ORDER BY total_exec_time + total_plan_time DESC LIMIT %s"
)


def measure(invokes: int, top: int, width: int = 100) -> list[str]:
    """The report's lines (a Markdown table)."""
    import psycopg
    from support.postgres import PostgresServer

    pg = PostgresServer.start_private(durable=True)
    try:
        data = os.path.join(pg._dir or "", "data")
        pg._pg("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop")
        pg._options = (
            pg._options.replace("fsync=off", "fsync=on").replace(
                "full_page_writes=off", "full_page_writes=on"
            )
            + PRELOAD
        )
        pg.restart()
        dsn = pg.new_database("botwire_pgss")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        with server(database=_as_url(dsn)) as srv:
            _pg_worker._ready = lambda: None  # no orchestrator: run at once
            cfg = {"side": "botwire", "url": srv.url, "invokes": 2, "threads": 10}
            _pg_worker.task_graph(cfg)  # warm-up: schema, connections, the first threads
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
            cfg["invokes"] = invokes
            cpu = proc_cpu(srv.proc.pid)
            run = _pg_worker.task_graph(cfg)
            cpu = proc_cpu(srv.proc.pid) - cpu
            with psycopg.connect(dsn, autocommit=True) as conn:
                rows = conn.execute(REPORT, (width, top)).fetchall()
    finally:
        pg.stop()
    total = sum(r[1] + r[2] for r in rows) / invokes
    lines = [
        f"{invokes} invokes, {run['step_ms']:.2f} ms per step; server CPU "
        f"{cpu / invokes * 1000:.1f} ms per invoke; PostgreSQL execution + planning of these "
        f"statements: {total:.1f} ms per invoke",
        "",
        "| calls per invoke | exec µs per call | plan µs per call | WAL B per call | statement |",
        "|---:|---:|---:|---:|---|",
    ]
    for calls, exec_ms, plan_ms, wal, query in rows:
        lines.append(
            f"| {calls / invokes:.1f} | {exec_ms / calls * 1000:.1f} | "
            f"{plan_ms / calls * 1000:.1f} | {float(wal) / calls:.0f} | `{query}` |"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--invokes", type=int, default=40)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    for line in measure(args.invokes, args.top):
        print(line)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
