"""Measuring a real server while a test attacks it: its RSS, and ``/healthz`` latency as another
tenant sees it.

Example::

    from support.probe import HealthProbe, rss_bytes, serving

    with serving("sqlite", tmp_path, "--max-list-length", "1000") as server:
        before = rss_bytes(server.proc.pid)
        with HealthProbe(server.url) as probe:
            attack(server)
        print(f"FIGURE healthz p99 {probe.p99_ms:.1f} ms, RSS +{(peak - before) >> 20} MiB")

Figures are printed, never asserted on (timing is not a test's business; limits are).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.server import ServerProcess, running_server

__all__ = ["BACKENDS", "HealthProbe", "RSSWatch", "rss_bytes", "serving"]

BACKENDS = ("sqlite", "postgres")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RSSWatch:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` and ``growth`` once stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_rss = rss_bytes(pid)
        self.peak = self.start_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start_rss) / (1 << 20)

    def __enter__(self) -> RSSWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class HealthProbe:
    """GET ``/healthz`` in a loop on its own keep-alive connection while the block runs."""

    def __init__(self, url: str, every: float = 0.01) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.every = every
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
            except OSError:
                self.failures += 1
                conn = None
            self.latencies.append(time.perf_counter() - start)
            self._stop.wait(self.every)
        if conn is not None:
            conn.close()

    def percentile(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99)

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=0.0) * 1000

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)


@contextlib.contextmanager
def serving(backend: str, tmp_path: Path, *args: str, **kwargs: Any) -> Iterator[ServerProcess]:
    """A real server on SQLite (a file in ``tmp_path``) or on a fresh PostgreSQL database."""
    if backend == "postgres":
        from support.postgres import new_database

        database: Any = new_database("botwire_hardening")
    else:
        database = tmp_path / "hardening.db"
    with running_server(*args, database=database, **kwargs) as server:
        yield server
