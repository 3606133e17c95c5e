"""The server's CPU per request under P3's load, this tree against another (issue 22).

P3 (``bench_server.py``) reports requests per second; on a 2-core machine that figure moves with
whatever else runs (``wrk``, PostgreSQL). The server's own CPU per request (user + system, from
``/proc``, divided by the requests ``wrk -t1 -c32`` completed) is steadier, and is what a change
to the server's code moves. Each round starts a fresh ``botwire-server`` per tree on one
throwaway PostgreSQL cluster (``_common.postgres``, as P3's), seeds P3's keys and runs P3's
no-op, GET, SET and APPEND loads; trees alternate round by round.

``--against DIR``: another checkout of this repository (e.g. ``git worktree add /tmp/old
HEAD~1``); its packages' ``src`` folders go first on the server's ``PYTHONPATH``.

    uv run python benchmarks/server_cpu.py --against /tmp/old [--rounds 4] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server
from _common import (
    Settings,
    checkout_pythonpath,
    log,
    median,
    postgres,
    server,
    wrk_available,
)
from pg_reference import proc_cpu

ROUTES = ("no-op", "GET", "SET", "APPEND")


def _round(dsn: str, pythonpath: str | None, seconds: float) -> dict[str, tuple[float, float]]:
    """Requests per second and server CPU µs per request of each route, one fresh server."""
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath
    try:
        with server(database=dsn) as srv:
            bench_server._seed(srv.port)
            bench_server._load(srv.port, "APPEND", 1.0)  # warm-up
            out = {}
            for name in ROUTES:
                cpu0 = proc_cpu(srv.proc.pid)
                result = bench_server._load(srv.port, name, seconds)
                if result["errors"]:  # never a CPU figure of refusals
                    raise RuntimeError(f"{name}: {result['errors']:.0f} requests failed")
                rps = result["rps"]
                out[name] = (rps, 1e6 * (proc_cpu(srv.proc.pid) - cpu0) / (rps * seconds))
            return out
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, required=True, help="another checkout")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    if not wrk_available():
        log("wrk is missing: install it (apt-get install wrk)")
        return 1
    try:
        against = checkout_pythonpath(args.against)
    except ValueError as exc:
        log(str(exc))
        return 1
    trees = {"this tree": None, str(args.against): against}
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {name: [] for name in trees}
    settings = Settings(quick=True, rounds=args.rounds, out=Path("."), postgres_url=None)
    with postgres(settings) as dsn:
        if dsn is None:
            log("PostgreSQL unavailable")
            return 1
        for i in range(args.rounds):
            for name, path in trees.items() if i % 2 == 0 else reversed(trees.items()):
                runs[name].append(_round(dsn, path, args.seconds))
                log(
                    f"  round {i + 1} {name}: "
                    + ", ".join(f"{r} {cpu:.0f} µs" for r, (_, cpu) in runs[name][-1].items())
                )
    print("\n| route | tree | server CPU per request (median) | range | ratio to the no-op |")
    print("|---|---|---:|---:|---:|")
    for route in ROUTES:
        for name, rs in runs.items():
            cpu = [r[route][1] for r in rs]
            ratio = median([r[route][0] / r["no-op"][0] for r in rs])
            print(
                f"| {route} | {name} | {median(cpu):.0f} µs | {min(cpu):.0f}–{max(cpu):.0f} µs "
                f"| {ratio:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
