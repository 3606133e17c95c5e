"""P14 and P15 of ``benchmarks/pg_reference.py``: SET throughput through ``botwire-server`` on
PostgreSQL — 8 writers to ONE namespace against 8 writers to 8 namespaces (a namespace-wide
write lock shows as a gap), and two replicas on one database against one (server CPU per SET,
aggregate throughput). The load is the raw-asyncio generator of ``benchmarks/server_rps.py``, one
keep-alive connection per writer; every request must succeed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from _common import Row, Settings, interleaved, log, median, server
from pg_reference import proc_cpu

__all__ = ["write_figures"]

VALUE = json.dumps({"value": {"role": "assistant", "content": "x" * 200, "turn": 7}})


def _put(path: str) -> bytes:
    body = VALUE.encode()
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _writers(namespaces: int, writers: int, tag: str) -> list[list[bytes]]:
    """One request list per connection: writer ``w`` writes its own 64 keys of namespace
    ``w % namespaces`` (distinct keys, so only a namespace-wide lock makes them wait)."""
    return [
        [_put(f"/v1/namespaces/{tag}-{w % namespaces}/keys/w{w}-{j}") for j in range(64)]
        for w in range(writers)
    ]


def _drive_many(targets: list[tuple[int, list[list[bytes]]]], seconds: float) -> list[Any]:
    import server_rps

    async def go() -> list[Any]:
        return list(
            await asyncio.gather(*(server_rps._drive(p, reqs, seconds) for p, reqs in targets))
        )

    return asyncio.run(go())


def write_figures(
    settings: Settings, dsn: str, seconds: float | None = None, rounds: int | None = None
) -> tuple[list[Row], dict[str, Any]]:
    """P14 and P15: ``seconds`` per load (2 with ``--quick``, else 4) and at least 5 rounds,
    because on a shared 2-core machine single rounds of P14 ranged from 0.5 to 0.9."""
    seconds = seconds or (2.0 if settings.quick else 4.0)
    rounds = rounds or max(settings.rounds, 5)
    details: dict[str, Any] = {
        "seconds": seconds,
        "rounds": rounds,
        "generator": "python asyncio (server_rps)",
    }
    with server(database=dsn) as srv:
        for ns in (1, 8):  # seed: every key exists, so both variants update rows
            _drive_many([(srv.port, _writers(ns, 8, f"ns{ns}"))], 0.5)

        def rate(ns: int) -> float:
            (r,) = _drive_many([(srv.port, _writers(ns, 8, f"ns{ns}"))], seconds)
            if r.errors:
                raise RuntimeError(f"{r.errors} failed SETs with {ns} namespace(s)")
            return float(r.rps)

        runs = interleaved({"one": lambda: rate(1), "eight": lambda: rate(8)}, rounds)
    ratio = median([a / b for a, b in zip(runs["one"], runs["eight"], strict=True)])
    details["namespaces"] = runs
    log(
        f"    P14 8 writers: one namespace {median(runs['one']):,.0f}/s, 8 namespaces "
        f"{median(runs['eight']):,.0f}/s"
    )
    rows = [
        Row(
            "P14",
            "SET throughput, 8 writers to ONE namespace vs 8 writers to 8 namespaces",
            ratio,
            "×",
            f"8 namespaces = {median(runs['eight']):,.0f} SET/s",
            "≥ 0.5×",
            ratio >= 0.5,
            note=f"one namespace {median(runs['one']):,.0f} SET/s; one server, {rounds} rounds",
            details=details,
        )
    ]
    # Two replicas against one: the same 16 writers (8 namespaces), split over the replicas.
    with server(database=dsn) as a, server(database=dsn) as b:
        pids = {"one": [a.proc.pid], "two": [a.proc.pid, b.proc.pid]}
        layouts = {
            "one": [(a.port, _writers(8, 16, "rep"))],
            "two": [(a.port, _writers(8, 8, "rep")), (b.port, _writers(8, 8, "rep2"))],
        }
        _drive_many(layouts["two"], 0.5)
        _drive_many(layouts["one"], 0.5)

        def replicas(name: str) -> dict[str, float]:
            t0 = sum(proc_cpu(p) for p in pids[name])
            results = _drive_many(layouts[name], seconds)
            cpu = sum(proc_cpu(p) for p in pids[name]) - t0
            sets = sum(r.requests for r in results)
            if any(r.errors for r in results):
                raise RuntimeError(f"failed SETs with {name} replica(s)")
            wall = max(r.seconds for r in results)
            return {"sets_per_s": sets / wall, "cpu_us_per_set": cpu / sets * 1e6}

        rep = interleaved({"one": lambda: replicas("one"), "two": lambda: replicas("two")}, rounds)
    details["replicas"] = rep
    cpu = {k: median([r["cpu_us_per_set"] for r in v]) for k, v in rep.items()}
    tput = {k: median([r["sets_per_s"] for r in v]) for k, v in rep.items()}
    log(
        f"    P15 two replicas {tput['two']:,.0f} SET/s, {cpu['two']:,.0f} µs CPU per SET; "
        f"one {tput['one']:,.0f} SET/s, {cpu['one']:,.0f} µs"
    )
    rows += [
        Row(
            "P15",
            "two replicas on one PostgreSQL: server CPU per SET",
            cpu["two"],
            "µs",
            f"one replica, same 16 writers = {cpu['one']:,.0f} µs",
            "—",
            None,
            note=f"aggregate {tput['two']:,.0f} SET/s (one replica {tput['one']:,.0f} SET/s)",
        ),
        Row(
            "P15b",
            "two replicas on one PostgreSQL: aggregate SET throughput (context)",
            tput["two"] / tput["one"],
            "×",
            f"one replica = {tput['one']:,.0f} SET/s",
            "—",
            None,
            note=f"{tput['two']:,.0f} SET/s; 2 cores shared by the generator, servers and database",
        ),
    ]
    return rows, details
