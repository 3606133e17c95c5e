"""What held watches on a prefix nobody writes cost the other tenants of a server.

One tenant fills a namespace with ``--keys`` keys and writes ``--rate`` times a second; a
read-only token holds the per-namespace limit of long-polls (``--polls``, ``after=1``, a prefix
that matches nothing) on it. Another tenant's PUTs are timed, first with no poll held (the
baseline, same run, same writes), then with the polls held; the server's CPU share and its
``botwire_watch_wakes_total`` (each wake is one read of the store) are read around each phase.

    uv run python benchmarks/watch_fanout.py [--keys 50000] [--polls 100] [--rate 20]
    uv run python benchmarks/watch_fanout.py --postgres [--postgres-url URL]   # on PostgreSQL
    uv run python benchmarks/watch_fanout.py --postgres --replicas 2   # the owner on another
    uv run python benchmarks/watch_fanout.py --postgres --replicas 2 --pgbouncer   # polling
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _common import Settings, median, postgres, server
from pg_reference import proc_cpu

from botwire import Memory

SECONDS = 10.0  # each phase
PUT_EVERY = 0.02  # the other tenant: 50 PUTs a second


def _wakes(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(r"^botwire_watch_wakes_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def _hold(host: str, port: int, ns: str, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, port))
        sock.sendall(
            f"GET /v1/namespaces/{ns}/changes?after=1&wait=120&prefix=nothing/ HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n\r\n".encode()
        )
        socks.append(sock)
    return socks


def _phase(url: str, pid: int, owner: Memory, other: Memory, rate: float) -> dict[str, float]:
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.wait(1 / rate):
            owner.set(f"k{i % 1000:05d}", i)
            i += 1

    writer = threading.Thread(target=write)
    cpu0, wakes0, t0 = proc_cpu(pid), _wakes(url), time.monotonic()
    writer.start()
    lat: list[float] = []
    while time.monotonic() - t0 < SECONDS:
        s = time.perf_counter()
        other.set("k", len(lat))
        lat.append((time.perf_counter() - s) * 1000)
        time.sleep(PUT_EVERY)
    stop.set()
    writer.join()
    wall = time.monotonic() - t0
    lat.sort()
    return {
        "median_ms": median(lat),
        "p95_ms": lat[int(len(lat) * 0.95)],
        "server_core": (proc_cpu(pid) - cpu0) / wall,
        "wakes_per_s": (_wakes(url) - wakes0) / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--polls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL server, not SQLite")
    parser.add_argument("--postgres-url", default=None, help="default: a throwaway cluster")
    parser.add_argument(
        "--replicas",
        type=int,
        choices=(1, 2),
        default=1,
        help="2 (PostgreSQL): the owner writes through another server than the polls' one",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="(PostgreSQL) the servers reach it through a PgBouncer in transaction mode, with no"
        " --pg-listen-url: the polls' server polls for the other replica's writes",
    )
    parser.add_argument("--server-args", default="", help="more botwire-server flags (quoted)")
    args = parser.parse_args()
    if args.replicas == 2 and not args.postgres:
        parser.error("--replicas 2 needs --postgres")
    if args.pgbouncer and not args.postgres:
        parser.error("--pgbouncer needs --postgres")
    settings = Settings(quick=False, rounds=1, out=Path("."), postgres_url=args.postgres_url)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        database = str(Path(tmp) / "fanout.db")
        if args.postgres:
            url = stack.enter_context(postgres(settings))
            if url is None:
                return 1
            database = url
        flags = ["--watch-hold", "120", *args.server_args.split()]
        if args.pgbouncer:
            from support.pgbouncer import running_pgbouncer

            database = stack.enter_context(running_pgbouncer(database, pool_size=20)).url(database)
            flags += ["--pg-pooler", "transaction"]
        srv = stack.enter_context(server(*flags, database=database))
        writes_to = srv
        if args.replicas == 2:
            writes_to = stack.enter_context(server(*flags, database=database))
        ns = f"fanout-{time.time_ns()}"
        owner, other = Memory(ns, url=writes_to.url), Memory(f"{ns}-other", url=srv.url)
        for start in range(0, args.keys, 500):
            owner.set_many({f"k{i:05d}": i for i in range(start, min(args.keys, start + 500))})
        base = _phase(srv.url, srv.proc.pid, owner, other, args.rate)
        socks = _hold(srv.host, srv.port, ns, args.polls)
        time.sleep(1.0)
        held = _phase(srv.url, srv.proc.pid, owner, other, args.rate)
        for sock in socks:
            sock.close()
        owner.close()
        other.close()
    where = " (through the other replica)" if args.replicas == 2 else ""
    where += ", through PgBouncer (polling)" if args.pgbouncer else ""
    print(f"{args.keys} keys, {args.rate:g} writes/s by the owner{where}, {args.polls} held polls")
    for name, r in (("no poll held", base), (f"{args.polls} polls held", held)):
        print(
            f"  {name:>16}: another tenant's PUT {r['median_ms']:.2f} ms median, "
            f"{r['p95_ms']:.2f} ms p95; server {r['server_core']:.0%} of a core; "
            f"{r['wakes_per_s']:.0f} wakes/s"
        )
    print(
        f"  ratio held / none: PUT median {held['median_ms'] / base['median_ms']:.2f}x, "
        f"p95 {held['p95_ms'] / base['p95_ms']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
