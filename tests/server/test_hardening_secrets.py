"""Issue 13 item 8: secrets come from files (Docker/Kubernetes secrets), never need to be in
argv (where every local user sees them in ``ps``), and are masked in every message and log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.postgres import new_database
from support.server import running_server

from botwire._wire import key_path
from botwire_server.auth import mint_token

SECRET = "file-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "hunter2-Pa55word"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_token_secret_file_keeps_the_secret_out_of_argv(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")  # a trailing newline, as `echo` writes
    with running_server(
        "--token-secret-file", str(tmp_path / "secret"), database=tmp_path / "s.db"
    ) as server:
        assert SECRET not in _cmdline(server.proc.pid)
        url = server.url + key_path("a", "k")
        assert httpx.get(url).status_code == 401
        token = mint_token(SECRET, ["*"], perm="write")
        r = httpx.put(url, json={"value": 1}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert "warning" not in server.log().lower()
        assert SECRET not in server.log()


def test_token_secret_in_argv_warns(tmp_path: Path) -> None:
    with running_server("--token-secret", SECRET, database=tmp_path / "w.db") as server:
        log = server.log()
    assert "--token-secret on the command line is visible to every local user" in log
    assert "--token-secret-file" in log
    assert SECRET not in log


def test_env_file_variables(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET)
    env = {"BOTWIRE_TOKEN_SECRET_FILE": str(tmp_path / "secret")}
    with running_server(database=tmp_path / "e.db", env=env) as server:
        assert httpx.get(server.url + key_path("a", "k")).status_code == 401


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    return subprocess.run(
        [sys.executable, "-m", "botwire_server", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bw:{PASSWORD}@[::1/db",  # unterminated IPv6 host
        f"postgresql://bw:{PASSWORD} x@127.0.0.1/db",  # a space in the password
        f"postgresql://bw:{PASSWORD}%zz@127.0.0.1/db",  # bad percent-encoding
        f"postgresql://bw:{PASSWORD}@127.0.0.1:notaport/db",  # bad port
    ],
)
def test_malformed_database_url_never_echoes_the_password(url: str) -> None:
    done = _serve("--database", url)
    assert done.returncode != 0
    assert PASSWORD not in done.stderr + done.stdout, done.stderr
    assert "visible to every local user" in done.stderr  # and the argv warning names the fix
    assert "--database-url-file" in done.stderr


def test_database_url_file_on_postgres(tmp_path: Path) -> None:
    # the throwaway cluster trusts local connections, so any password is accepted: enough to
    # see that it never appears in argv or in the log
    dsn = new_database("botwire_secretfile") + f" password={PASSWORD}"
    (tmp_path / "db").write_text(dsn + "\n")
    with running_server("--database-url-file", str(tmp_path / "db"), database=False) as server:
        assert PASSWORD not in _cmdline(server.proc.pid)
        assert httpx.put(server.url + key_path("a", "k"), json={"value": 1}).status_code == 200
        log = server.log()
    assert "'database': 'postgresql://...'" in log  # really PostgreSQL, and masked
    assert PASSWORD not in log
    done = _serve("--database", "x.db", "--database-url-file", str(tmp_path / "db"))
    assert done.returncode == 2 and "not both" in done.stderr


def test_bad_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    done = _serve("--token-secret-file", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "cannot read the token secret from file" in done.stderr
    (tmp_path / "empty").write_text("\n")
    done = _serve("--token-secret-file", str(tmp_path / "empty"))
    assert done.returncode == 2 and "is empty" in done.stderr
