"""P3's SQLite rows, before and after, in one run (issue 22): one server of a baseline tree and
one of this tree, started in turn (rounds alternate which goes first), each loaded like P3
(``wrk -t1 -c32``: the no-op route, GET, SET, APPEND); besides the req/s ratios to the same
process's no-op, the server's CPU per request (``/proc/<pid>/stat``), which the other jobs on a
shared machine disturb less than throughput.

    git archive <commit> packages | tar -x -C /tmp/base
    uv run python benchmarks/sqlite_writes.py --baseline /tmp/base [--rounds 3] [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server
from _common import ROOT, log, median
from pg_reference import proc_cpu

sys.path.insert(0, str(ROOT / "tests"))
from support.server import start_server

NAMES = ["no-op", "GET", "SET", "APPEND"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a tree holding packages/ of the baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--store-calls", default="inline", choices=("inline", "thread"))
    args = ap.parse_args()
    base = Path(args.baseline) / "packages"
    variants = {
        "before": {"PYTHONPATH": f"{base}/botwire-core/src:{base}/botwire-server/src"},
        "after": {},
    }
    rps: dict[str, dict[str, list[float]]] = {v: {n: [] for n in NAMES} for v in variants}
    cpu: dict[str, dict[str, list[float]]] = {v: {n: [] for n in NAMES} for v in variants}
    for r in range(args.rounds):
        for v in list(variants) if r % 2 == 0 else list(reversed(variants)):
            with tempfile.TemporaryDirectory() as tmp:
                srv = start_server(
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--store-calls",
                    args.store_calls,
                    database=os.path.join(tmp, "p3.db"),
                    env=variants[v],
                )
                try:
                    bench_server._seed(srv.port)
                    bench_server._load(srv.port, "no-op", 1.0)  # warm-up
                    for n in NAMES:
                        c0 = proc_cpu(srv.proc.pid)
                        out = bench_server._load(srv.port, n, args.seconds)
                        used = proc_cpu(srv.proc.pid) - c0
                        rps[v][n].append(out["rps"])
                        cpu[v][n].append(used / (out["rps"] * args.seconds) * 1e6)
                finally:
                    srv.stop()
        log(f"round {r + 1} of {args.rounds} done")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"SQLite ({args.store_calls}), {args.rounds} rounds of {args.seconds:g} s, load {load}")
    for v in variants:
        for n in NAMES:
            ratios = [a / b for a, b in zip(rps[v][n], rps[v]["no-op"], strict=True)]
            cost = [b / a for a, b in zip(cpu[v][n], cpu[v]["no-op"], strict=True)]
            print(
                f"FIGURE {v:6} {n:6} req/s {[round(x) for x in rps[v][n]]} "
                f"× no-op {min(ratios):.2f}–{max(ratios):.2f} (median {median(ratios):.2f}); "
                f"CPU µs/request {[round(x) for x in cpu[v][n]]}, "
                f"no-op's CPU / this {min(cost):.2f}–{max(cost):.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
