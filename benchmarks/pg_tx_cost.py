"""What a write transaction costs ``botwire-server`` on PostgreSQL, against a call in it (issue 22,
P3's APPEND: the figures behind grouping concurrent writes of *different* namespaces).

Two measurements, on a throwaway cluster (``_common.postgres``; fsync off, as for P3):

1. **In-process**: ``AsyncPgReader.batch`` (what the server's write routes run) of one-item
   APPENDs for ``--seconds`` each, ``asyncio.gather``-ed in the widths of :data:`WIDTHS`: one
   write at a time (a transaction each), 32 writes to 32 namespaces (32 transactions), 32 over
   8 namespaces (P3's shape: groups of ~4) and 32 to one namespace (groups of up to 32). The
   figure is the process's CPU per write (user + system): how it falls as writes share
   transactions, and namespaces (one namespace's lock, statistics row and list entries are
   written once per round trip for all the calls that share it).
2. **Under P3's load**: ``wrk -t1 -c32`` of APPENDs to P3's 256 lists spread over 8 namespaces
   (P3 itself) and the same lists in one namespace, rounds alternating, with the server's CPU
   per request from ``/proc`` (the server is at ~100% of a core in both).

    uv run python benchmarks/pg_tx_cost.py [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server
from _common import Settings, log, postgres, server, wrk_available
from pg_reference import proc_cpu

#: (label, writes in flight, namespaces they spread over); 1 in flight: one after the other
WIDTHS = [
    ("one at a time (each a transaction)", 1, 1),
    ("32, each to its own namespace", 32, 32),
    ("32 over 8 namespaces (P3's shape)", 32, 8),
    ("32 to one namespace", 32, 1),
]
ITEM = json.dumps(bench_server.VALUE)
#: P3's APPEND, and the same 256 lists in one namespace
ONE_NAMESPACE = '"/v1/namespaces/bench-0/keys/list-" .. (i % 256)'


async def _in_process(store: Any, seconds: float, rounds: int) -> dict[str, list[float]]:
    from botwire.store import Op

    reader = store.async_reader()
    await reader.open()
    try:
        for ns in range(32):
            await asyncio.gather(
                *(reader.batch(f"tx-{ns}", [Op("set", f"l{k}", value="[]")]) for k in range(8))
            )
        out: dict[str, list[float]] = {label: [] for label, _, _ in WIDTHS}
        for _ in range(rounds):
            for label, width, spread in WIDTHS:
                n, cpu0, t0 = 0, time.process_time(), time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    await asyncio.gather(
                        *(
                            reader.batch(
                                f"tx-{i % spread}", [Op("append", f"l{i % 8}", items=(ITEM,))]
                            )
                            for i in range(width)
                        )
                    )
                    n += width
                cpu = time.process_time() - cpu0
                out[label].append(1e6 * cpu / n)
                rate = n / (time.perf_counter() - t0)
                log(f"    {label:38} {rate:7,.0f} writes/s  {1e6 * cpu / n:5.0f} µs CPU per write")
        return out
    finally:
        await reader.close()


def _under_load(dsn: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    table = dict(bench_server.BOTWIRE)
    table["APPEND, one namespace"] = ("PATCH", bench_server.PATCH_BODY, ONE_NAMESPACE)
    names = ["APPEND", "APPEND, one namespace"]
    out: dict[str, list[float]] = {n: [] for n in names}
    with server(database=dsn) as srv:
        bench_server._seed(srv.port)
        bench_server._seed(srv.port, namespaces=1)  # the same lists in one namespace
        bench_server._load(srv.port, "no-op", 1.0)  # warm-up
        for _ in range(rounds):
            for name in names:
                cpu0, t0 = proc_cpu(srv.proc.pid), time.perf_counter()
                r = bench_server._load(srv.port, name, seconds, table)
                if r["errors"]:  # never measure refusals as throughput
                    raise RuntimeError(f"{r['errors']:.0f} failed requests in {name!r}")
                cpu, wall = proc_cpu(srv.proc.pid) - cpu0, time.perf_counter() - t0
                us = 1e6 * cpu / (r["rps"] * wall)
                out[name].append(us)
                log(f"    P3 {name:22} {r['rps']:7,.0f} req/s  server {us:5.0f} µs CPU per request")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import uvloop

    from botwire_server.storage.postgres import PostgresStore

    with postgres(Settings(quick=True, rounds=args.rounds, out=Path("."))) as dsn:
        if dsn is None:
            log("PostgreSQL unavailable")
            return 1
        log("in-process: AsyncPgReader.batch of one-item APPENDs")
        with PostgresStore(dsn, async_writes=True, max_size=8) as store:
            inproc = uvloop.run(_in_process(store, args.seconds, args.rounds))
        load = {}
        if wrk_available():
            log("under P3's load (wrk -t1 -c32)")
            load = _under_load(dsn, max(args.seconds, 2.0) * 2, args.rounds)
        else:
            log("wrk missing: the P3 comparison is skipped")
    print("\n| writes in flight | CPU per write |\n|---|---:|")
    for label, us in inproc.items():
        print(f"| {label} | {min(us):.0f}–{max(us):.0f} µs |")
    if load:
        print("\n| P3 APPEND, 256 lists | server CPU per request |\n|---|---:|")
        for label, us in load.items():
            print(f"| {label} | {min(us):.0f}–{max(us):.0f} µs |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
