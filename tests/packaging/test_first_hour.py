"""The README's first hour, run as written: its quick start against a real server and against the
embedded store, and its server command installing only what the server needs."""

from __future__ import annotations

import http.client
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.server import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
SERVER_COMMAND = "uv run --package botwire-server --no-dev botwire-server"
# What the server must never pull in (the test environment's heavy dependencies).
HEAVY = ("crewai", "llama-index-core", "langchain-core", "matplotlib", "schemathesis", "pytest")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _python_block(text: str) -> str:
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    env.update(extra)
    return env


def _run(code: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, f"the README's quick start failed:\n{done.stderr}"
    return done.stdout


def test_readme_quick_start_runs_as_pasted_against_a_server(tmp_path: Path) -> None:
    code = _python_block(_section("Quick start"))
    with running_server(database=tmp_path / "bw.db") as server:
        env = _env(BOTWIRE_URL=server.url, HOME=str(tmp_path))
        first = _run(code, env, tmp_path)
        second = _run(code, env, tmp_path)  # a later invocation remembers the first
    assert first != second, (first, second)
    assert list(tmp_path.glob("*.db")) == [tmp_path / "bw.db"]  # nothing stored locally


def test_readme_quick_start_runs_on_the_embedded_store(tmp_path: Path) -> None:
    code = _python_block(_section("Quick start"))
    env = _env(HOME=str(tmp_path))
    assert _run(code, env, tmp_path) != _run(code, env, tmp_path)
    assert (tmp_path / ".botwire" / "memory.db").is_file()


def test_readme_set_up_commands_are_the_tested_ones() -> None:
    setup = _section("Set up")
    assert SERVER_COMMAND in setup
    assert "uv run pytest" in setup
    assert "export BOTWIRE_URL=http://127.0.0.1:8765" in README


def test_server_command_installs_only_what_the_server_needs(tmp_path: Path) -> None:
    """The README's server command, in a fresh environment: it serves, and its environment
    holds the server's dependencies only (the test environment keeps everything)."""
    env_dir = tmp_path / "env"
    port = free_port()
    argv = [
        *shlex.split(SERVER_COMMAND),
        "--port",
        str(port),
        "--database",
        str(tmp_path / "bw.db"),
    ]
    argv.insert(2, "--locked")  # uv run --locked ...: the lock as committed, never rewritten
    env = _env(UV_PROJECT_ENVIRONMENT=str(env_dir))
    started = time.monotonic()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 240  # a cold uv cache downloads ~20 wheels
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, log.read_text("utf-8", "replace")[-3000:]
        took = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(20)
    listed = subprocess.run(
        ["uv", "pip", "list", "--python", str(env_dir / "bin" / "python"), "--format", "freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    names = {line.split("==")[0].lower() for line in listed}
    size = sum(f.stat().st_size for f in env_dir.rglob("*") if f.is_file() and not f.is_symlink())
    print(
        f"FIGURE server command: {len(names)} packages, {size / 1e6:.0f} MB, "
        f"served after {took:.1f} s"
    )
    assert {"botwire-server", "botwire-core", "fastapi", "uvicorn"} <= names
    assert not names & set(HEAVY), names & set(HEAVY)
    assert len(names) < 40, sorted(names)


@pytest.mark.parametrize("group", ["--no-dev"])
def test_the_lock_resolves_the_server_alone_small(group: str) -> None:
    """CI-sized guard without installing: what the server command would install."""
    out = subprocess.run(
        [
            "uv",
            "export",
            "--locked",
            "--package",
            "botwire-server",
            group,
            "--no-hashes",
            "--no-emit-workspace",
            "--format",
            "requirements-txt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    names = {
        line.split("==")[0].strip().lower()
        for line in out.splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert not names & set(HEAVY) and "fastapi" in names and len(names) < 40, sorted(names)
