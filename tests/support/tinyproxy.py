"""A real tinyproxy (Debian ``tinyproxy``) on a free loopback port: the ``HTTP_PROXY`` /
``HTTPS_PROXY`` of the transport tests. It forwards absolute-form requests and opens ``CONNECT``
tunnels to any port; its log (``log()``) shows every request it handled.

Example::

    with running_tinyproxy(tmp_path) as proxy:
        env = {"HTTP_PROXY": proxy.url}
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from support.server import free_port

__all__ = ["TinyProxy", "running_tinyproxy"]

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class TinyProxy:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_tinyproxy(directory: Path, extra: str = "") -> Iterator[TinyProxy]:
    """Start tinyproxy in the foreground (``extra``: more config lines, e.g. ``BasicAuth u p``);
    always stopped on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "tinyproxy.log"
    conf = directory / "tinyproxy.conf"
    # No ConnectPort line: CONNECT is allowed to any port (the servers are on random ports).
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
        f'LogFile "{log_path}"\nLogLevel Info\nPidFile "{directory / "tinyproxy.pid"}"\n'
        "MaxClients 50\n" + extra
    )
    proc = subprocess.Popen(
        [TINYPROXY, "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proxy = TinyProxy(proc, port, log_path)
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tinyproxy did not start:\n{proxy.log()}")
            time.sleep(0.05)
        yield proxy
    finally:
        proxy.stop()
