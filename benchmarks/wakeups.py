"""What a round trip costs when the other side has been idle: the machine behind P10's chain.

P10 (``pg_reference.py``) is a chain: the client, the server and PostgreSQL each wait for the
one before. On a virtual machine whose idle vCPUs halt at once (Linux's ``haltpoll`` idle
driver with ``guest_halt_poll_ns = 0``), waking a process that sleeps on an idle vCPU takes the
hypervisor's round trip, and a chain pays it at every hand-off. This script measures it, each
figure a median over ``--count`` round trips and a ratio to the back-to-back case of the same
run (docs/benchmarks-log.md, "Why a round trip in P10's chain costs..."):

- ``SELECT 1`` through psycopg on the durable cluster P10 uses: back to back, after the client
  slept 300 µs, after it computed for 300 µs (the database's vCPU idle meanwhile);
- a byte sent back and forth between two processes on a socketpair: back to back, after
  200 µs of work, after a 1 ms sleep; and back to back with both processes pinned to one vCPU,
  then to two (where the machine has two): a hand-off between vCPUs against a plain switch;
- a ``botwire-server`` on that cluster: its own CPU per ``GET /_noop/fast`` and per one-request
  write of three keys (a LangGraph put's shape: a 2 kB record, a blob, a pointer), back to back
  against after the client slept 3 ms. The same request's work, measured in the server's
  ``/proc`` CPU: where it grows after a sleep, the process pays for having been idle (what
  was in its caches is gone), and a chain pays that at every hand-off to a Python process.

It also prints the idle driver and the guest's halt-polling setting where Linux shows them.

    uv run python benchmarks/wakeups.py [--count 1000]
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Settings, log, median

GAP = 300e-6  # what the client does between two round trips in the SELECT 1 cases


def idle_settings() -> dict[str, str]:
    """The idle driver and halt-polling parameters, as far as sysfs shows them."""
    found: dict[str, str] = {}
    places = {
        "cpuidle driver": "/sys/devices/system/cpu/cpuidle/current_driver",
        "guest_halt_poll_ns": "/sys/module/haltpoll/parameters/guest_halt_poll_ns",
    }
    for name, path in places.items():
        try:
            found[name] = Path(path).read_text().strip()
        except OSError:
            found[name] = "not shown"
    return found


def busy(seconds: float) -> None:
    """Compute (spin) for ``seconds`` of wall time: a stand-in for a process's own work."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _median_us(count: int, before: Callable[[], None] | None, trip: Callable[[], None]) -> float:
    times = []
    for _ in range(count):
        if before is not None:
            before()
        t = time.perf_counter()
        trip()
        times.append(time.perf_counter() - t)
    return median(times) * 1e6


def database(dsn: str, count: int) -> dict[str, float]:
    """``SELECT 1`` round trips, µs (median), by what the client did before each."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:

        def trip() -> None:
            conn.execute("SELECT 1")

        _median_us(100, None, trip)  # warm-up
        return {
            "back to back": _median_us(count, None, trip),
            "after a 300 µs sleep": _median_us(count, lambda: time.sleep(GAP), trip),
            "after 300 µs of work": _median_us(count, lambda: busy(GAP), trip),
        }


def socketpair(count: int, cpus: tuple[int, int] | None = None) -> dict[str, float]:
    """Round trips of one byte between two processes, µs (median); with ``cpus``, only back to
    back, this process pinned to the first vCPU and the echo to the second."""
    mine, theirs = socket.socketpair()
    mask = os.sched_getaffinity(0)
    pid = os.fork()
    if pid == 0:  # the echo
        mine.close()
        if cpus is not None:
            os.sched_setaffinity(0, {cpus[1]})
        while data := theirs.recv(64):
            theirs.send(data)
        os._exit(0)
    theirs.close()
    if cpus is not None:
        os.sched_setaffinity(0, {cpus[0]})

    def trip() -> None:
        mine.send(b"x")
        mine.recv(64)

    try:
        _median_us(100, None, trip)
        if cpus is not None:
            return {"back to back": _median_us(count, None, trip)}
        return {
            "back to back": _median_us(count, None, trip),
            "after 200 µs of work": _median_us(count, lambda: busy(200e-6), trip),
            "after a 1 ms sleep": _median_us(count, lambda: time.sleep(1e-3), trip),
        }
    finally:
        mine.close()
        os.waitpid(pid, 0)
        os.sched_setaffinity(0, mask)


def pinned(count: int) -> dict[str, float]:
    """Back-to-back socketpair round trips, µs, both processes on one vCPU and on two: what a
    hand-off between vCPUs costs over a switch on one (empty where fewer than two are ours)."""
    mask = sorted(os.sched_getaffinity(0))
    if len(mask) < 2:
        return {}
    return {
        "on one vCPU": socketpair(count, (mask[0], mask[0]))["back to back"],
        "on two vCPUs": socketpair(count, (mask[0], mask[1]))["back to back"],
    }


IDLE_GAP = 3e-3  # what the client sleeps between two requests in the idle-server cases
RECORD = {"x": "y" * 2000}  # a LangGraph checkpoint record's size, about


def idle_server(dsn: str, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """A real server's CPU per request, µs: a no-op, then a three-key write, each back to back
    and after a 3 ms sleep: each a total over ``count`` requests, not a median (``/proc``
    counts CPU in clock ticks, 10 ms here), so ``count`` should be in the hundreds."""
    import http.client

    from _common import server
    from bench_client import _http_get
    from pg_reference import proc_cpu

    from botwire import Memory

    def per_request(pid: int, call: Callable[[int], None], gap: float | None) -> float:
        cpu = proc_cpu(pid)
        for i in range(count):
            if gap:
                time.sleep(gap)
            call(i)
        return 1e6 * (proc_cpu(pid) - cpu) / count

    with server(database=dsn) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        get = _http_get(conn, "/_noop/fast")  # a refusal fails it, never timed as the route

        def noop(_: int) -> None:
            get()

        memory = Memory("wakeups", url=srv.url)

        def write(i: int) -> None:
            memory.set_many({f"cp-{i}": RECORD, f"blob-{i}": i, "latest": i})

        out: list[dict[str, float]] = []
        for call in (noop, write):
            for i in range(min(count, 200)):  # warm-up: connections, prepared statements
                call(i)
            out.append(
                {
                    "back to back": per_request(srv.proc.pid, call, None),
                    "after a 3 ms sleep": per_request(srv.proc.pid, call, IDLE_GAP),
                }
            )
        conn.close()
        memory.close()
    return out[0], out[1]


def report(name: str, figures: dict[str, float]) -> list[str]:
    """One line a case, each as a ratio to the first (back to back, or on one vCPU)."""
    first, base = next(iter(figures.items()))
    return [
        f"  {name:10} {case:22} {us:7.1f} µs  {us / base if base else math.nan:5.2f}× {first}"
        for case, us in figures.items()
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--postgres-url", default=None)
    args = ap.parse_args()
    from pg_reference import durable_postgres

    for name, value in idle_settings().items():
        log(f"  {name}: {value}")
    lines = report("socketpair", socketpair(args.count))
    if one_and_two := pinned(args.count):
        lines += report("pinned", one_and_two)
    settings = Settings(True, 1, Path(os.devnull), postgres_url=args.postgres_url)
    with durable_postgres(settings) as dsn:  # --postgres-url, else a private durable cluster
        assert dsn is not None  # it yields a URL or raises
        lines += report("SELECT 1", database(dsn, args.count))
        noop, write = idle_server(dsn, args.count)
        lines += report("no-op CPU", noop) + report("write CPU", write)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
