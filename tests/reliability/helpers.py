"""Shared helpers of the reliability suite: worker processes, a server that can be killed and
restarted on the same port, ack files, and the figures each test reports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.server import ServerStartError, _healthy, free_port

WORKER = str(Path(__file__).with_name("worker.py"))
FIGURES_ENV = "BOTWIRE_RELIABILITY_FIGURES"


def scale(ci: int, slow: int, request: Any) -> int:
    """``ci`` in the normal run, ``slow`` when the test carries the ``slow`` marker."""
    return slow if request.node.get_closest_marker("slow") else ci


# -- figures -----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a test attempted and what went wrong; recorded as a pytest user property and, when
    ``BOTWIRE_RELIABILITY_FIGURES`` names a file, appended to it as one JSON line."""

    test: str
    attempted: int = 0
    acknowledged: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, record_property: Any) -> None:
        data = {
            "test": self.test,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "faults": dict(self.faults),
            "lost": self.lost,
            "duplicated": self.duplicated,
            **self.extra,
        }
        record_property("reliability", data)
        print(f"\nRELIABILITY {json.dumps(data, sort_keys=True)}")
        path = os.environ.get(FIGURES_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(data, sort_keys=True) + "\n")


# -- worker processes --------------------------------------------------------------------------


def spawn_worker(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    return subprocess.Popen(
        [sys.executable, WORKER, json.dumps(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session``) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@contextlib.contextmanager
def workers(specs: Sequence[dict[str, Any]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start one worker per spec; every one is killed on exit if still running."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            procs.append(spawn_worker(spec))
        yield procs
    finally:
        for p in procs:
            kill_group(p)
            if p.stdout is not None:
                p.stdout.close()


def wait_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """Wait for every worker to exit 0; fail with its output otherwise."""
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"worker {p.args!r} did not finish in {timeout} s") from exc
        assert p.returncode == 0, f"worker failed ({p.returncode}):\n{out.decode(errors='replace')}"


def read_acks(path: Path) -> list[list[str]]:
    """Complete lines of an ack file, split on spaces (a torn last line is impossible with
    ``O_APPEND`` writes, but an unfinished one would be dropped here anyway)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    return [line.split(" ") for line in text.split("\n")[:-1] if line]


def check_order(
    items: Sequence[str], writers: Sequence[str], per_writer: int | None
) -> tuple[int, int]:
    """(lost, duplicated) of ``"<wid>:<i>"`` items; asserts each writer's items are in order."""
    seen = Counter(items)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    lost = 0
    for wid in writers:
        mine = [int(x.split(":")[1]) for x in items if x.split(":")[0] == wid]
        assert mine == sorted(mine), f"writer {wid}'s items are out of order"
        if per_writer is not None:
            lost += len(set(range(per_writer)) - set(mine))
    return lost, duplicated


# -- a server that is killed and restarted on one port -----------------------------------------


class RestartableServer:
    """``botwire-server`` on a fixed loopback port: :meth:`start`, :meth:`kill9`, again."""

    def __init__(self, database: str, *args: str) -> None:
        self.database = database
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = Path(tempfile.mkdtemp(prefix="botwire-crash-log-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
        argv = [
            sys.executable,
            "-m",
            "botwire_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database",
            self.database,
            "--no-access-log",
            *self.args,
        ]
        log = self.log_dir / f"server-{self.starts}.log"
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _healthy("127.0.0.1", self.port):
                return
            time.sleep(0.02)
        self.kill9()
        raise ServerStartError(f"restart {self.starts} failed:\n{log.read_text(errors='replace')}")

    def kill9(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def __enter__(self) -> RestartableServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill9()
        # the logs matter only while it runs: a failed start puts its log in the error
        shutil.rmtree(self.log_dir, ignore_errors=True)
