"""Start a REAL ``botwire-server`` process on a free loopback port, for tests.

Example::

    from tests.support.server import running_server

    with running_server("--writes-per-day", "3", database=tmp_path / "bw.db") as server:
        httpx.get(server.url + "/healthz")

or, as a pytest fixture::

    @pytest.fixture
    def server(tmp_path):
        with running_server(database=tmp_path / "bw.db", testing_clock=True) as s:
            yield s

Every process started here is stopped (SIGTERM, then SIGKILL) when its context exits, and an
``atexit`` hook stops any that a crashed test left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from support.proc import Daemon, spawn

__all__ = ["ServerProcess", "ServerStartError", "free_port", "running_server", "start_server"]

_LIVE: set[ServerProcess] = set()
#: temporary directories made here (databases, logs): removed when the process exits, after
#: its servers stopped (a test may read a stopped server's log)
_MADE: list[Path] = []
_MAKER = os.getpid()


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/healthz`` in time; carries its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess(Daemon):
    """A running ``botwire-server``: ``url``, ``port``, ``log()`` and ``stop()``."""

    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int, log_path: Path):
        super().__init__(proc, log_path)
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.log_path = log_path

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL after ``timeout``; exit code."""
        _LIVE.discard(self)
        return super().stop(timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerProcess({self.url}, pid={self.proc.pid})"


def _healthy(host: str, port: int) -> bool:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=1.0)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


def start_server(
    *args: str,
    database: str | os.PathLike[str] | bool | None = None,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    testing_clock: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
    python: str | os.PathLike[str] = sys.executable,
) -> ServerProcess:
    """Start ``python -m botwire_server`` with ``args`` and wait until ``/healthz`` answers.

    ``database`` defaults to a fresh file in a temporary directory; ``database=False`` passes
    no ``--database`` at all (the test gives it another way: a file, the environment).
    ``env`` is added to a copy of the environment from which every ``BOTWIRE_*`` variable was
    removed. ``python``: the interpreter that runs it (another environment's, e.g. a fresh
    ``pip install``).
    """
    if database is None:
        database = Path(tempfile.mkdtemp(prefix="botwire-srv-")) / "botwire.db"
        _MADE.append(database.parent)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    base_env.update(env or {})
    log_dir = Path(tempfile.mkdtemp(prefix="botwire-srv-log-"))
    _MADE.append(log_dir)
    last_log = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind: retry
        port = free_port(host)
        db_args = [] if database is False else ["--database", os.fspath(database)]
        argv = [
            os.fspath(python),
            "-m",
            "botwire_server",
            "--host",
            host,
            "--port",
            str(port),
            *db_args,
            *args,
            *extra_args,
        ]
        if testing_clock:
            argv.append("--testing-clock")
        log_path = log_dir / f"server-{port}.log"
        with open(log_path, "wb") as log_file:
            proc = spawn(argv, stdout=log_file, env=base_env, cwd=cwd)
        server = ServerProcess(proc, host, port, log_path)
        _LIVE.add(server)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _healthy(host, port):
                return server
            time.sleep(0.05)
        last_log = server.log()
        server.stop()
        if "address already in use" not in last_log.lower():
            break
    raise ServerStartError(f"botwire-server did not start:\n{last_log}")


@contextlib.contextmanager
def running_server(*args: str, **kwargs: object) -> Iterator[ServerProcess]:
    """Context manager around :func:`start_server`; the process is always stopped."""
    server = start_server(*args, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(timeout=5)
    for path in _MADE if os.getpid() == _MAKER else ():  # not in a forked child's exit
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def serving_app(app: object, port: int) -> Iterator[str]:
    """Serve an ASGI ``app`` built in the test (``create_app(...)``) with uvicorn on loopback
    ``port``, in a thread of this process; yields its base URL. For tests that need the app
    object itself (a store of their own, a changed middleware list)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
