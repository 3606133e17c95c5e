"""P16: two ``botwire-server`` replicas on one PostgreSQL THROUGH PgBouncer (``pool_mode =
transaction``, Debian's 1.18, ``--pg-pooler transaction``), against the same replicas connected
directly, and one replica alone, all in one run on one durable cluster (the P10-P15 cluster's
settings). The load is P15's: 16 keep-alive writers over 8 namespaces, split over the replicas
(``benchmarks/pg_writes.py``); every request must succeed.

Figures: server CPU per SET (user + system of the botwire-server processes, all threads, per
request: what holds on 2 cores whatever the generator costs), PgBouncer's own CPU per SET, and
aggregate SET/s for context. Each round runs every variant in a rotating order.

    uv run python benchmarks/pg_bouncer.py [--quick] [--rounds N]
    uv run python benchmarks/run.py --only P16
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Row, Settings, interleaved, log, median, server
from pg_reference import durable_postgres, proc_cpu
from pg_writes import _drive_many, _writers

__all__ = ["p16_pgbouncer"]

#: The variants: which replicas take the load.
VARIANTS = ("one-direct", "two-direct", "one-bouncer", "two-bouncer")


@contextlib.contextmanager
def _replicas(dsn: str) -> Iterator[tuple[dict[str, list[Any]], int]]:
    """Two direct replicas and two through a fresh PgBouncer; the pid of PgBouncer."""
    from support.pgbouncer import running_pgbouncer

    with running_pgbouncer(dsn, pool_size=20) as bouncer:
        via = bouncer.url(dsn)
        flags = ("--pg-pooler", "transaction")
        with (
            server(database=dsn) as d1,
            server(database=dsn) as d2,
            server(*flags, database=via) as b1,
            server(*flags, database=via) as b2,
        ):
            yield {"direct": [d1, d2], "bouncer": [b1, b2]}, bouncer.proc.pid


def p16_pgbouncer(
    settings: Settings, seconds: float | None = None, rounds: int | None = None
) -> list[Row]:
    """P16/P16b: two replicas through PgBouncer against two direct and one alone; ``seconds``
    per load (2 with ``--quick``, else 4), ``rounds`` (at least 3, or 5 without ``--quick``)."""
    seconds = seconds or (2.0 if settings.quick else 4.0)
    rounds = rounds or max(settings.rounds, 3 if settings.quick else 5)
    with durable_postgres(settings) as dsn, _replicas(str(dsn)) as (servers, bouncer_pid):
        layouts: dict[str, list[tuple[int, list[list[bytes]]]]] = {}
        pids: dict[str, list[int]] = {}
        for path in ("direct", "bouncer"):
            a, b = servers[path]
            layouts[f"one-{path}"] = [(a.port, _writers(8, 16, f"{path}1"))]
            layouts[f"two-{path}"] = [
                (a.port, _writers(8, 8, f"{path}1")),
                (b.port, _writers(8, 8, f"{path}2")),
            ]
            pids[f"one-{path}"] = [a.proc.pid]
            pids[f"two-{path}"] = [a.proc.pid, b.proc.pid]
        for name in VARIANTS:  # seed the keys: every variant then updates existing rows
            _drive_many(layouts[name], 0.5)

        def run(name: str) -> dict[str, float]:
            t0 = sum(proc_cpu(p) for p in pids[name])
            b0 = proc_cpu(bouncer_pid)
            results = _drive_many(layouts[name], seconds)
            cpu = sum(proc_cpu(p) for p in pids[name]) - t0
            bcpu = proc_cpu(bouncer_pid) - b0
            sets = sum(r.requests for r in results)
            if any(r.errors for r in results):
                raise RuntimeError(f"failed SETs with {name}")
            return {
                "sets_per_s": sets / max(r.seconds for r in results),
                "cpu_us_per_set": cpu / sets * 1e6,
                "bouncer_us_per_set": bcpu / sets * 1e6,
            }

        runs = interleaved({n: (lambda n=n: run(n)) for n in VARIANTS}, rounds)
    cpu = {n: [r["cpu_us_per_set"] for r in v] for n, v in runs.items()}
    tput = {n: [r["sets_per_s"] for r in v] for n, v in runs.items()}
    bcpu = [r["bouncer_us_per_set"] for r in runs["two-bouncer"]]

    def rng(xs: list[float]) -> str:
        return f"{min(xs):,.0f}-{max(xs):,.0f}"

    for n in VARIANTS:
        log(
            f"    P16 {n}: {median(cpu[n]):,.0f} µs CPU/SET ({rng(cpu[n])}), "
            f"{median(tput[n]):,.0f} SET/s ({rng(tput[n])})"
        )
    details = {"seconds": seconds, "rounds": rounds, "runs": runs}
    return [
        Row(
            "P16",
            "two replicas through PgBouncer (transaction mode): server CPU per SET",
            median(cpu["two-bouncer"]),
            "µs",
            f"two direct = {median(cpu['two-direct']):,.0f} µs; one through PgBouncer = "
            f"{median(cpu['one-bouncer']):,.0f} µs",
            "—",
            None,
            note=f"range {rng(cpu['two-bouncer'])} µs over {rounds} rounds; PgBouncer itself "
            f"{median(bcpu):,.0f} µs/SET",
            details=details,
        ),
        Row(
            "P16b",
            "two replicas through PgBouncer: aggregate SET throughput (context)",
            median(tput["two-bouncer"]) / median(tput["one-bouncer"]),
            "×",
            f"one replica through PgBouncer = {median(tput['one-bouncer']):,.0f} SET/s",
            "—",
            None,
            note=f"{median(tput['two-bouncer']):,.0f} SET/s ({rng(tput['two-bouncer'])}); two "
            f"direct {median(tput['two-direct']):,.0f} SET/s, one direct "
            f"{median(tput['one-direct']):,.0f} SET/s",
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--postgres-url", default=None)
    args = ap.parse_args()
    settings = Settings(
        quick=args.quick,
        rounds=args.rounds or (3 if args.quick else 5),
        out=ROOT / "benchmarks" / "results",
        postgres_url=args.postgres_url,
    )
    for row in p16_pgbouncer(settings):
        print(
            f"| {row.id} | {row.figure} | {row.value:,.2f} {row.unit} | {row.baseline} | "
            f"{row.note} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
