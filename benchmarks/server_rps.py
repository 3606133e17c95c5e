"""Requests/second of one ``botwire-server`` process (one uvicorn worker).

Starts a real server (SQLite; also PostgreSQL with ``--postgres-url``), then drives it with
``--connections`` keep-alive connections from a raw-asyncio load generator for ``--duration``
seconds per scenario: the hidden ``GET /_noop`` route (the framework's own cost, same process,
same middleware), ``GET`` of a key and ``PUT`` (SET) of a key. Prints a markdown table with
each route's rate as a fraction of the no-op's.

    uv run python benchmarks/server_rps.py                       # SQLite, inline and thread
    uv run python benchmarks/server_rps.py --postgres-url postgresql://localhost/botwire_bench
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, database: str, extra: list[str]) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "botwire_server",
                "--port",
                str(self.port),
                "--database",
                database,
                "--no-access-log",
                "--log-level",
                "warning",
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        q = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return q[int(p) - 1] * 1000


async def _connection(port: int, requests: list[bytes], stop_at: float, out: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            req = requests[i % len(requests)]
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            out.latencies.append(time.perf_counter() - t0)
            out.requests += 1
            if status >= 400:
                out.errors += 1
    finally:
        writer.close()


async def _drive(port: int, requests: list[list[bytes]], duration: float) -> Result:
    out = Result(0, 0, 0.0, [])
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(_connection(port, reqs, stop_at, out) for reqs in requests))
    out.seconds = time.perf_counter() - start
    return out


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _put(path: str, body: bytes) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


VALUE = json.dumps({"value": {"role": "assistant", "content": "x" * 200, "turn": 7}}).encode()


def scenarios(connections: int) -> dict[str, list[list[bytes]]]:
    keys = [f"/v1/namespaces/bench-{c % 8}/keys/key-{c}" for c in range(connections)]
    return {
        "GET /_noop (baseline)": [[_get("/_noop")] for _ in keys],
        "GET key": [[_get(k)] for k in keys],
        "PUT key (SET)": [[_put(k, VALUE)] for k in keys],
    }


def _merge(results: list[Result]) -> Result:
    """The median round by rate (rounds are interleaved across backends to share the noise)."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds per backend and route; the median is reported",
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--postgres-url", default=None)
    p.add_argument(
        "--store-calls",
        choices=["inline", "thread", "both"],
        default="both",
        help="how the server calls SQLite (both: measure each)",
    )
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="botwire-bench-")
    backends: list[tuple[str, str, list[str]]] = []
    modes = ["inline", "thread"] if args.store_calls == "both" else [args.store_calls]
    for mode in modes:
        backends.append(
            (f"SQLite ({mode})", os.path.join(tmp, f"bench-{mode}.db"), ["--store-calls", mode])
        )
    if args.postgres_url:
        backends.append(("PostgreSQL (thread pool)", args.postgres_url, []))
    scen = scenarios(args.connections)
    servers: dict[str, Server] = {}
    measured: dict[tuple[str, str], list[Result]] = {}
    try:
        for label, database, extra in backends:
            servers[label] = Server(database, extra)
            asyncio.run(_drive(servers[label].port, scen["PUT key (SET)"], 0.5))  # seed + warm
        for rnd in range(args.rounds):
            for label, _, _ in backends:
                port = servers[label].port
                for name, reqs in scen.items():
                    asyncio.run(_drive(port, reqs, 0.3))  # warm-up
                    result = asyncio.run(_drive(port, reqs, args.duration))
                    measured.setdefault((label, name), []).append(result)
                    print(
                        f"  round {rnd + 1}: {label:26} {name:22} {result.rps:8.0f} req/s "
                        f"(p50 {result.pct(50):.1f} ms, p99 {result.pct(99):.1f} ms, "
                        f"errors {result.errors})",
                        file=sys.stderr,
                    )
    finally:
        for server in servers.values():
            server.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{args.connections} keep-alive connections, median of {args.rounds} interleaved "
        f"rounds of {args.duration:g} s, one uvicorn worker, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}\n"
    )
    print("| backend | route | req/s | vs no-op | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, _, _ in backends:
        base = _merge(measured[(label, "GET /_noop (baseline)")]).rps
        for name in scen:
            r = _merge(measured[(label, name)])
            print(
                f"| {label} | {name} | {r.rps:,.0f} | {r.rps / base:.2f} | {r.pct(50):.1f} | "
                f"{r.pct(99):.1f} | {sum(x.errors for x in measured[(label, name)])} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
