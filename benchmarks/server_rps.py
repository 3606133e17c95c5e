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
            [sys.executable, "-m", "botwire_server", "--port", str(self.port), "--database",
             database, "--no-access-log", "--log-level", "warning", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _put(path: str, body: bytes) -> bytes:
    return (f"PUT {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


VALUE = json.dumps({"value": {"role": "assistant", "content": "x" * 200, "turn": 7}}).encode()


def scenarios(connections: int) -> dict[str, list[list[bytes]]]:
    keys = [f"/v1/namespaces/bench-{c % 8}/keys/key-{c}" for c in range(connections)]
    return {
        "GET /_noop (baseline)": [[_get("/_noop")] for _ in keys],
        "GET key": [[_get(k)] for k in keys],
        "PUT key (SET)": [[_put(k, VALUE)] for k in keys],
    }


def run_backend(label: str, database: str, extra: list[str], args: argparse.Namespace
                ) -> list[tuple[str, str, Result]]:
    server = Server(database, extra)
    rows = []
    try:
        scen = scenarios(args.connections)
        # seed the keys read by GET, warm up
        asyncio.run(_drive(server.port, scen["PUT key (SET)"], 0.5))
        for name, reqs in scen.items():
            asyncio.run(_drive(server.port, reqs, min(1.0, args.duration / 4)))  # warm-up
            result = asyncio.run(_drive(server.port, reqs, args.duration))
            rows.append((label, name, result))
            print(f"  {label:28} {name:24} {result.rps:9.0f} req/s "
                  f"(p50 {result.pct(50):.1f} ms, p99 {result.pct(99):.1f} ms, "
                  f"errors {result.errors})", file=sys.stderr)
    finally:
        server.stop()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--postgres-url", default=None)
    p.add_argument("--store-calls", choices=["inline", "thread", "both"], default="both",
                   help="how the server calls SQLite (both: measure each)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="botwire-bench-")
    rows: list[tuple[str, str, Result]] = []
    modes = ["inline", "thread"] if args.store_calls == "both" else [args.store_calls]
    for mode in modes:
        db = os.path.join(tmp, f"bench-{mode}.db")
        rows += run_backend(f"SQLite ({mode})", db, ["--store-calls", mode], args)
    if args.postgres_url:
        rows += run_backend("PostgreSQL (thread pool)", args.postgres_url, [], args)
    print(f"\n{args.connections} keep-alive connections, {args.duration:g} s per scenario, "
          f"one uvicorn worker, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| backend | route | req/s | vs no-op | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    baselines = {label: r.rps for label, name, r in rows if name.startswith("GET /_noop")}
    for label, name, r in rows:
        ratio = r.rps / baselines[label] if baselines.get(label) else float("nan")
        print(f"| {label} | {name} | {r.rps:,.0f} | {ratio:.2f} | {r.pct(50):.1f} | "
              f"{r.pct(99):.1f} | {r.errors} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
