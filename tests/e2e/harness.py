"""The e2e harness: fresh processes, wiped home dirs, a real botwire server.

Every invocation runs in a new Python process (``sys.executable``) whose ``HOME`` and temp
directory are brand-new empty directories, with only the environment a platform would give it.
The memory lives in a real ``botwire-server`` process on a loopback port, started with a token
secret, so tokens (and read-only tokens) are checked for real.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RUNTIMES = Path(__file__).resolve().parent / "runtimes"
SECRET = "e2e-test-secret-please-change-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; fail with the process's output if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer {url} within {timeout} s")


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a process this suite started (by its own handle), and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    if proc.stdout:
        proc.stdout.close()


@dataclass
class Server:
    """A real ``botwire-server`` process with a token secret."""

    url: str
    secret: str

    def token(self, ns: str, *, read_only: bool = False) -> str:
        """Mint a token with the server's own CLI."""
        args = [
            sys.executable,
            "-m",
            "botwire_server",
            "token",
            "create",
            "--ns",
            ns,
            "--secret",
            self.secret,
        ]
        if read_only:
            args.append("--read-only")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        return proc.stdout.strip().splitlines()[-1].strip()


def base_env(home: Path) -> dict[str, str]:
    """A bare environment: a fresh, empty home and temp directory, nothing inherited but PATH."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Run:
    """What one fresh process printed: one result per invocation and the backend stats."""

    returncode: int
    results: list[dict[str, Any]]
    stats: dict[str, Any]
    stderr: str


def parse_run(proc: subprocess.CompletedProcess[str]) -> Run:
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    stats = next((line["stats"] for line in lines if "stats" in line), {})
    results = [line for line in lines if "stats" not in line]
    return Run(proc.returncode, results, stats, proc.stderr)


class Platform:
    """Starts fresh 'instances' of one platform: every call is a new process with a new home."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> None:
        self._tmp = tmp_path_factory
        self.env = env

    def fresh_env(self, **extra: str) -> dict[str, str]:
        # Compiled bytecode is shared, as a deployment package ships it: otherwise every
        # "instance" would recompile LangChain from source. It goes to the session's temp dir,
        # never into the repository or the virtualenv.
        pycache = self._tmp.getbasetemp() / "pycache"
        return {
            **base_env(self._tmp.mktemp("instance")),
            "PYTHONPYCACHEPREFIX": str(pycache),
            **self.env,
            **extra,
        }

    def run(
        self, args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
    ) -> Run:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=env or self.fresh_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        run = parse_run(proc)
        if not run.results and proc.returncode != 0:
            raise AssertionError(f"the runtime crashed ({proc.returncode}):\n{proc.stderr}")
        return run


def tcp_connections(pid: int, remote_port: int) -> set[int]:
    """Local ports of ``pid``'s established TCP connections to ``remote_port`` (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            if (
                state == "01"
                and inode in inodes
                and int(remote.rsplit(":", 1)[1], 16) == remote_port
            ):
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports
