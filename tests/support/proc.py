"""Processes the tests start: fresh interpreters (as a serverless invocation runs code) and
foreground daemons (botwire-server, nginx, tinyproxy) with their logs, one start-up and one
stop for all of them.

Example::

    proc = spawn([TINYPROXY, "-d", "-c", str(conf)])
    with serving(Daemon(proc, log_path), [port], "tinyproxy") as proxy:
        ...  # stopped (SIGTERM, then SIGKILL) on exit, even when the start-up failed
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["Daemon", "listening", "run_python", "serving", "spawn"]

D = TypeVar("D", bound="Daemon")


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class Daemon:
    """A process a test started: ``proc``, ``log()`` (its log files, joined) and ``stop()``."""

    def __init__(self, proc: subprocess.Popen[bytes], *log_paths: Path) -> None:
        self.proc = proc
        self.log_paths = log_paths

    def log(self) -> str:
        """Everything the process logged so far (missing files read as empty)."""
        parts = []
        for path in self.log_paths:
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text("utf-8", "replace"))
        return "\n".join(parts)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL after ``timeout``; the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def spawn(argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (so a stop reaches only it), output discarded unless
    ``stdout=`` says otherwise: daemons here write their own log files."""
    options: dict[str, object] = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.STDOUT,
        "start_new_session": True,
        **kwargs,
    }
    return subprocess.Popen(list(argv), **options)  # type: ignore[call-overload,no-any-return]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@contextlib.contextmanager
def serving(daemon: D, ports: Sequence[int], what: str, timeout: float = 10.0) -> Iterator[D]:
    """Wait until ``daemon`` listens on every port, yield it, and always stop it; a daemon that
    exits or does not listen in time is a ``RuntimeError`` carrying its log."""
    try:
        deadline = time.monotonic() + timeout
        while not all(listening(port) for port in ports):
            if daemon.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{daemon.log()}")
            time.sleep(0.05)
        yield daemon
    finally:
        daemon.stop()
