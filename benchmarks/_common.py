"""What the benchmark modules share: timing helpers, result rows, servers and load generators.

Every figure is a ratio against a baseline measured in the same run, as a median over repeated
rounds, because the machines we measure on are shared and noisy. Everything runs on loopback and
every process started here is stopped (the server helpers come from ``tests/support``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: real servers, PostgreSQL, the proxy

from support.server import ServerProcess, free_port, start_server  # noqa: E402

__all__ = [
    "ROOT",
    "Row",
    "Settings",
    "free_port",
    "interleaved",
    "log",
    "median",
    "process_ms",
    "process_times",
    "server",
    "wrk_available",
]


@dataclass
class Settings:
    quick: bool
    rounds: int
    out: Path
    postgres_url: str | None = None


@dataclass
class Row:
    """One line of the summary table."""

    id: str
    figure: str
    value: float  # the measured figure (ratio, ms, ...), as ``unit`` says
    unit: str
    baseline: str
    target: str
    met: bool | None  # None: no target (context figure)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def interleaved(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every ``fn`` once per round, in a rotating order, and collect what each returns.

    Rotating the order spreads drift in machine load evenly over the variants.
    """
    names = list(fns)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            out[name].append(fns[name]())
    return out


def process_times(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one fresh process. CPU time (user + system of the child) is
    far less sensitive than wall time to other load on a shared machine."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, argv)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def process_ms(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one fresh process, in milliseconds."""
    return process_times(argv, env)[0]


_PYCACHE: str | None = None


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for fresh-process figures: no ``BOTWIRE_*`` variables, and bytecode
    caching on, in a private directory (``PYTHONPYCACHEPREFIX``), because a deployed function
    has its ``.pyc`` files: a sandbox with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise
    recompile every imported module in every process and measure the compiler."""
    global _PYCACHE
    if _PYCACHE is None:
        _PYCACHE = tempfile.mkdtemp(prefix="botwire-bench-pyc-")
        atexit.register(shutil.rmtree, _PYCACHE, True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOTWIRE_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    env.update(extra)
    return env


@contextlib.contextmanager
def server(*args: str, database: str | os.PathLike[str] | None = None) -> Iterator[ServerProcess]:
    """A real ``botwire-server`` (quiet: no access log), always stopped."""
    proc = start_server("--no-access-log", "--log-level", "warning", *args, database=database)
    try:
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def postgres(settings: Settings) -> Iterator[str | None]:
    """A DSN of a fresh database: ``--postgres-url`` or a throwaway private cluster."""
    if settings.postgres_url:
        yield _as_url(settings.postgres_url)
        return
    try:
        from support.postgres import PostgresServer
    except Exception as exc:  # psycopg or pytest missing
        log(f"  PostgreSQL unavailable ({exc}); skipped")
        yield None
        return
    try:
        pg = PostgresServer.start()
    except Exception as exc:
        log(f"  PostgreSQL could not start ({str(exc)[:200]}); skipped")
        yield None
        return
    try:
        yield _as_url(pg.new_database("botwire_bench"))
    finally:
        pg.stop()


def _as_url(dsn: str) -> str:
    """``postgresql://`` form of a libpq DSN: ``--database`` takes a URL or a SQLite path, so a
    ``key=value`` DSN would silently become the name of a SQLite file."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(dsn)
    auth = quote(str(d.get("user", "postgres")))
    if d.get("password"):
        auth += ":" + quote(str(d["password"]))
    host = str(d.get("host", "127.0.0.1"))
    # a Unix socket's directory goes percent-encoded where the host stands, as libpq reads it
    return (
        f"postgresql://{auth}@{quote(host, safe='') if host.startswith('/') else host}:"
        f"{d.get('port', 5432)}/{quote(str(d['dbname']))}"
    )


# -- load generation -------------------------------------------------------------------------


def checkout_pythonpath(tree: Path) -> str:
    """``PYTHONPATH`` that puts another checkout's packages (their ``src`` folders) first, for
    an A/B of two trees (``server_cpu.py``, ``instructions.py``)."""
    srcs = sorted(str(p) for p in (tree / "packages").glob("*/src"))
    if not srcs:
        raise ValueError(f"{tree} has no packages/*/src: not a checkout of this repository")
    return os.pathsep.join(srcs)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_RPS = re.compile(r"Requests/sec:\s*([\d.]+)")
_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")


def wrk(url: str, seconds: float, connections: int, script: str | None = None) -> dict[str, float]:
    """Run ``wrk`` (one thread) and return ``{"rps", "p50_ms", "p99_ms", "errors"}``."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
        path = f.name
    try:
        if script:
            argv += ["-s", path]
        done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30)
    finally:
        os.unlink(path)
    out = done.stdout
    m = _RPS.search(out)
    if done.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    lat = {p: float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u] for p, v, u in _LAT.findall(out)}
    bad = _NON2XX.search(out)
    return {
        "rps": float(m.group(1)),
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "errors": float(bad.group(1)) if bad else 0.0,
    }


def python_load(
    port: int, requests: list[bytes], seconds: float, connections: int
) -> dict[str, float]:
    """The fallback load generator (raw asyncio, ``benchmarks/server_rps.py``)."""
    import asyncio

    import server_rps

    per_conn = [requests[i::connections] or requests for i in range(connections)]
    r = asyncio.run(server_rps._drive(port, per_conn, seconds))
    return {"rps": r.rps, "p50_ms": r.pct(50), "p99_ms": r.pct(99), "errors": float(r.errors)}


# -- other processes -------------------------------------------------------------------------


class Proc:
    """A background process in its own session, stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv: list[str], **kw: Any) -> None:
        self.p = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw
        )

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
