"""The first minute of a real ``botwire-server`` process: what a person reads at start-up, the
errors that must come before any "ready", and ``GET /``."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import free_port, running_server

from botwire import Memory

SECRET = "s" * 40


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}


def _run_failing(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A server that must refuse to start: its exit code and output (it must not hang)."""
    return subprocess.run(
        [sys.executable, "-m", "botwire_server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=cwd,
        check=False,
    )


# -- the ready line ------------------------------------------------------------------------------


def test_human_ready_line_names_url_resolved_database_auth_and_export(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with running_server("--log-format", "human", database="data/bw.db", cwd=tmp_path) as server:
        log = server.log()
    print(f"FIGURE human start-up output:\n{log}")
    ready = [line for line in log.splitlines() if "ready on" in line]
    assert len(ready) == 1, log
    line = ready[0]
    assert f"http://127.0.0.1:{server.port}" in line
    assert f"SQLite {tmp_path / 'data' / 'bw.db'}" in line  # resolved, absolute
    assert "auth: anonymous" in line
    assert f"export BOTWIRE_URL=http://127.0.0.1:{server.port}" in log
    assert f"console: http://127.0.0.1:{server.port}/console/" in log  # issue 20
    assert not any(x.startswith("{") for x in log.splitlines()), "no JSON in human mode"
    assert "Uvicorn" not in log and "'allow_anonymous'" not in log  # no dict, no chatter


def test_json_logs_when_not_a_terminal_carry_the_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with running_server(database="d/bw.db", cwd=tmp_path) as server:
        httpx.get(server.url + "/healthz")
        time.sleep(0.2)
        log = server.log()
    lines = [json.loads(x) for x in log.splitlines() if x.strip()]  # every line is JSON
    ready = [x for x in lines if str(x.get("msg", "")).startswith("botwire-server ready")]
    assert len(ready) == 1
    assert repr(str(tmp_path / "d" / "bw.db")) in ready[0]["msg"]


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        # poll(), not select(): a long test session holds descriptors above select's 1024
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if poller.poll(200):
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
    return out


@contextlib.contextmanager
def _on_a_terminal(*args: str, cwd: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """A server whose stdout/stderr is a pseudo-terminal, as when a person runs it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "botwire_server", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        yield master, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        os.close(master)


def test_a_terminal_gets_the_human_line_by_default(tmp_path: Path) -> None:
    port = free_port()
    with _on_a_terminal("--port", str(port), cwd=tmp_path, env=_env()) as (master, _):
        out = _read_until(master, b"export BOTWIRE_URL", 30).decode("utf-8", "replace")
    assert f"export BOTWIRE_URL=http://127.0.0.1:{port}" in out, out
    assert f"SQLite {tmp_path / 'botwire.db'}" in out  # the default ./botwire.db, resolved
    assert '{"ts"' not in out


@pytest.mark.postgres
def test_postgres_url_is_shown_with_its_password_masked(tmp_path: Path) -> None:
    from support.postgres import PostgresUnavailable, shared_server

    try:
        dsn = shared_server().new_database("botwire_startup")
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    # trust authentication ignores the password: it is here to be masked
    url = f"postgresql://{p['user']}:hunter2-pw@{p['host']}:{p['port']}/{p['dbname']}"
    with running_server("--log-format", "human", database=url) as server:
        log = server.log()
    assert "hunter2-pw" not in log
    assert f"PostgreSQL postgresql://{p['user']}:***@{p['host']}:{p['port']}/{p['dbname']}" in log


def test_port_zero_reports_and_serves_the_port_the_system_chose(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "--port",
            "0",
            "--log-format",
            "human",
            "--database",
            str(tmp_path / "bw.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        out = _read_until(proc.stdout.fileno(), b"export BOTWIRE_URL", 30).decode()
        m = re.search(r"export BOTWIRE_URL=(http://127\.0\.0\.1:(\d+))", out)
        assert m and m.group(2) != "0", out
        with Memory("p0", url=m.group(1)) as memory:
            memory.set("k", 1)
            assert memory.get("k") == 1
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


# -- errors before any "ready" -------------------------------------------------------------------


def test_port_in_use_is_one_clear_error_before_ready(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run_failing("--port", str(port), "--database", str(tmp_path / "bw.db"))
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert not re.search(r"\bready\b", out) and "Errno" not in out and "Traceback" not in out, out
    assert f"cannot listen on http://127.0.0.1:{port}: address already in use" in out
    assert f"--port {port + 1}" in out  # the fix
    assert not (tmp_path / "bw.db").exists()  # nothing was opened


def test_a_file_that_is_not_a_database_is_reported_and_left_intact(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"my notes, not SQLite\n" * 200)
    done = _run_failing("--port", str(free_port()), "--database", str(notes))
    out = done.stdout + done.stderr
    assert done.returncode == 1 and not re.search(r"\bready\b", out) and "Traceback" not in out, out
    assert f"cannot open the database (SQLite {notes})" in out
    assert "--database" in out
    assert notes.read_bytes() == b"my notes, not SQLite\n" * 200  # nothing stored is lost


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs holding one existing database (root ignores file modes, not ``ro``)."""
    if os.geteuid() != 0:
        path = tmp_path / "ro"
        path.mkdir()
        with Memory("ns", url=str(path / "bw.db")) as memory:
            memory.set("kept", "value")
        path.chmod(0o555)
        (path / "bw.db").chmod(0o444)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(path)], check=True)
    try:
        with Memory("ns", url=str(path / "bw.db")) as memory:
            memory.set("kept", "value")
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                (path / f"bw.db{suffix}").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_database_is_reported_before_ready(read_only_dir: Path) -> None:
    db = read_only_dir / "bw.db"
    for target in (db, read_only_dir / "new.db"):
        done = _run_failing("--port", str(free_port()), "--database", str(target))
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert not re.search(r"\bready\b", out) and "Traceback" not in out, out
        assert f"cannot open the database (SQLite {target})" in out
        assert f"in {read_only_dir}: check that folder exists, its permissions" in out
    # nothing stored is lost: writable again, the value is there
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,rw", str(read_only_dir)], check=True)
    else:
        read_only_dir.chmod(0o755)
        db.chmod(0o644)
    with Memory("ns", url=str(db)) as memory:
        assert memory.get("kept") == "value"


def test_bad_log_format_names_the_choices(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "--port",
            str(free_port()),
            "--database",
            str(tmp_path / "bw.db"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "BOTWIRE_LOG_FORMAT": "yaml"},
        check=False,
    )
    assert done.returncode == 2
    assert not (tmp_path / "bw.db").exists()
    assert "log format 'yaml'" in done.stderr and "'human' or 'json'" in done.stderr


# -- GET / ---------------------------------------------------------------------------------------


def test_root_lists_links_as_json_and_as_html() -> None:
    with (
        running_server(env={"BOTWIRE_TOKEN_SECRET": SECRET}) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        api = http.get("/")
        assert api.status_code == 200 and api.headers["content-type"] == "application/json"
        body = api.json()
        assert body["name"] == "botwire-server"
        hrefs = [link["href"] for link in body["links"]]
        assert "/docs" in hrefs and "/openapi.json" in hrefs and "/healthz" in hrefs
        assert "/console/" in hrefs
        for href in hrefs:  # every link works (metrics and docs need no token either)
            assert http.get(href).status_code == 200, href
        page = http.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.headers["content-type"].startswith("text/html")
        assert '<a href="docs">' in page.text  # relative: it works behind a path prefix
        # a landing page, not data: the namespace API still wants a token
        assert http.get("/v1/namespaces/x/keys").status_code == 401


# -- the one rule for SQLite paths ---------------------------------------------------------------


def test_server_database_follows_the_clients_path_rule(tmp_path: Path) -> None:
    with running_server("--log-format", "human", database="sqlite:///rel.db", cwd=tmp_path) as s:
        log = s.log()
    assert f"database: SQLite {tmp_path / 'rel.db'} " in log
    assert (tmp_path / "rel.db").is_file()
    port = str(free_port())
    address = _run_failing("--port", port, "--database", "127.0.0.1:5432", cwd=tmp_path)
    assert address.returncode == 2
    assert "postgresql://USER@127.0.0.1:5432/DBNAME" in address.stderr
    slashes = _run_failing("--port", port, "--database", "sqlite:///tmp/bw-x.db", cwd=tmp_path)
    assert slashes.returncode == 2
    assert (
        "sqlite:////tmp/bw-x.db" in slashes.stderr and "sqlite:///./tmp/bw-x.db" in slashes.stderr
    )
    assert not (tmp_path / "127.0.0.1:5432").exists() and not (tmp_path / "tmp").exists()
