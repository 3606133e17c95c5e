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
import subprocess
from collections.abc import Iterator
from pathlib import Path

from support.proc import Daemon, serving, spawn
from support.server import free_port

__all__ = ["TinyProxy", "running_tinyproxy"]

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class TinyProxy(Daemon):
    """A running tinyproxy: ``url``, ``port``, ``log()`` (every request it handled), ``stop()``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        super().__init__(proc, log_path)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path


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
    proc = spawn([TINYPROXY, "-d", "-c", str(conf)])
    with serving(TinyProxy(proc, port, log_path), [port], "tinyproxy") as proxy:
        yield proxy
