"""Keep-alive answers leave at once, whichever event loop and HTTP parser the server runs.

A server whose connections lacked ``TCP_NODELAY`` answered every keep-alive request after the
first ~40 ms late: an answer written in two sends (h11 writes head and body apart) waits, by
Nagle's algorithm, for the client's delayed ACK of the first. uvloop sets the option on every
connection; plain asyncio only on sockets created with ``IPPROTO_TCP``, and the server's own
listening socket was created with protocol 0. A ``pip install botwire-server`` had neither
uvloop nor httptools then, so every user of the package (and of the Docker image) served
~725 requests/s with 44 ms per keep-alive request, while every test and benchmark ran with
both (other workspace packages pull them in). The package now requires both, and the listening
socket says TCP, so plain asyncio (a platform without uvloop's wheels) sets it too.

Each case starts a real ``botwire-server`` with some of the accelerators hidden from it (a
module of that name that raises ``ImportError`` comes first on ``PYTHONPATH``), checks from
``/proc`` which native modules it loaded, and reads ``TCP_NODELAY`` of the server's end of a
keep-alive connection that has carried several requests (``support.sockets``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.server import running_server
from support.sockets import keepalive_nodelay, loaded_libraries

ACCELERATORS = ("uvloop", "httptools")


def _hide(root: Path, names: tuple[str, ...]) -> dict[str, str]:
    """An environment whose ``PYTHONPATH`` makes ``import NAME`` fail for each of ``names``."""
    for name in names:
        pkg = root / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}


@pytest.mark.parametrize(
    "hidden",
    [(), ("uvloop",), ("httptools",), ("uvloop", "httptools")],
    ids=["as-installed", "plain-asyncio", "h11", "plain-asyncio-and-h11"],
)
def test_every_connection_has_tcp_nodelay(tmp_path: Path, hidden: tuple[str, ...]) -> None:
    env = _hide(tmp_path / "hide", hidden)
    with running_server(database=tmp_path / "bw.db", env=env) as server:
        loaded = loaded_libraries(server.proc.pid)
        for name in ACCELERATORS:  # the case runs what it says it runs
            assert any(f"/{name}/" in p for p in loaded) == (name not in hidden), (name, hidden)
        nodelay = keepalive_nodelay(server.proc.pid, server.port, "nd")
    assert nodelay != 0, (
        f"the server's end of a keep-alive connection lacks TCP_NODELAY ({hidden=})"
    )
