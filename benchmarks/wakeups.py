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
  200 µs of work, after a 1 ms sleep.

It also prints the idle driver and the guest's halt-polling setting where Linux shows them.

    uv run python benchmarks/wakeups.py [--count 1000]
"""

from __future__ import annotations

import argparse
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


def _busy(seconds: float) -> None:
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
            "after 300 µs of work": _median_us(count, lambda: _busy(GAP), trip),
        }


def socketpair(count: int) -> dict[str, float]:
    """Round trips of one byte between two processes, µs (median)."""
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echo
        mine.close()
        while data := theirs.recv(64):
            theirs.send(data)
        os._exit(0)
    theirs.close()

    def trip() -> None:
        mine.send(b"x")
        mine.recv(64)

    try:
        _median_us(100, None, trip)
        return {
            "back to back": _median_us(count, None, trip),
            "after 200 µs of work": _median_us(count, lambda: _busy(200e-6), trip),
            "after a 1 ms sleep": _median_us(count, lambda: time.sleep(1e-3), trip),
        }
    finally:
        mine.close()
        os.waitpid(pid, 0)


def report(name: str, figures: dict[str, float]) -> list[str]:
    base = figures["back to back"]
    return [
        f"  {name:10} {case:22} {us:7.1f} µs  {us / base:5.2f}× back to back"
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
    settings = Settings(True, 1, Path(os.devnull), postgres_url=args.postgres_url)
    with durable_postgres(settings) as dsn:  # --postgres-url, else a private durable cluster
        assert dsn is not None  # it yields a URL or raises
        lines += report("SELECT 1", database(dsn, args.count))
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
