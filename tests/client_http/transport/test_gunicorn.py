"""gunicorn ``--preload`` with 4 workers serving different users: the ``Memory`` the master
built (and used) before forking must give each worker's request its own user's value.
Before the fix, the workers shared the master's pooled socket and read each other's answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from client_http.transport.conftest import Client
from support.server import ServerProcess, free_port

USERS = [f"user-{i}" for i in range(8)]
REQUESTS = 240


@contextlib.contextmanager
def running_gunicorn(env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "--workers",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(Path(__file__).parent),
                "--graceful-timeout",
                "5",
                "gunicorn_app:app",
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/?user=none")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + log.read_text()) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _ask(port: int, user: str) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/?user={user}")
        result: dict[str, object] = json.loads(conn.getresponse().read())
        return result
    finally:
        conn.close()


def test_preloaded_memory_serves_each_user_their_own_value(
    server: ServerProcess, ns: str, kind: str, tmp_path: Path
) -> None:
    with Client("sync", ns, url=server.url) as direct:
        direct.set_many({u: {"owner": u} for u in USERS})
    env = {"BOTWIRE_TEST_URL": server.url, "BOTWIRE_TEST_NS": ns, "BOTWIRE_TEST_KIND": kind}
    with running_gunicorn(env, tmp_path) as port, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _ask(port, USERS[i % len(USERS)]), range(REQUESTS)))
    wrong = [a for a in answers if a["value"] != {"owner": a["user"]}]
    pids = {a["pid"] for a in answers}
    print(
        f"FIGURE gunicorn {kind}: {REQUESTS} requests over {len(pids)} workers, "
        f"{len(wrong)} wrong values"
    )
    assert len(pids) >= 2  # really served by several forked workers
    assert wrong == []
