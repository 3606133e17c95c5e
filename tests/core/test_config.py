"""Configuration: BOTWIRE_URL, the default file, the serverless warning and BOTWIRE_DEBUG."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.proc import run_python

from botwire import InvalidArgument, Memory
from botwire._config import resolve


def test_url_forms(tmp_path: Path) -> None:
    assert resolve(f"sqlite:///{tmp_path}/a.db").sqlite_path == f"{tmp_path}/a.db"
    assert resolve(f"{tmp_path}/b.db").sqlite_path == f"{tmp_path}/b.db"
    assert resolve("http://127.0.0.1:8765/").url == "http://127.0.0.1:8765"
    assert resolve("https://x.example/prefix").is_http
    with pytest.raises(InvalidArgument, match="scheme"):
        resolve("redis://localhost")
    with pytest.raises(InvalidArgument, match="timeout"):
        resolve(timeout=0)


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTWIRE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("BOTWIRE_TOKEN", "tok")
    monkeypatch.setenv("BOTWIRE_TIMEOUT", "2.5")
    monkeypatch.setenv("BOTWIRE_RETRIES", "0")
    s = resolve()
    assert (s.url, s.token, s.timeout, s.retries) == ("http://127.0.0.1:1", "tok", 2.5, 0)
    assert resolve(url=f"{tmp_path}/x.db", token="t2").token == "t2"  # arguments win
    monkeypatch.setenv("BOTWIRE_TIMEOUT", "soon")
    with pytest.raises(InvalidArgument, match="BOTWIRE_TIMEOUT"):
        resolve()


def test_default_file_is_under_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    run_python("from botwire import Memory\nMemory('n').set('k', 1)", env={"HOME": str(home)})
    assert (home / ".botwire" / "memory.db").exists()
    out = run_python(
        "from botwire import Memory\nprint(Memory('n').get('k'))", env={"HOME": str(home)}
    ).stdout
    assert out.strip() == "1"


def test_unwritable_home_falls_back_to_temp(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    out = run_python(
        "from botwire import Memory\nm = Memory('n')\nm.set('k', 2)\nprint(m._settings.url)",
        env={"HOME": str(not_a_dir), "TMPDIR": str(tmp_path)},
    ).stdout
    assert out.strip() == f"sqlite:///{tmp_path}/botwire-0/memory.db".replace(
        "botwire-0", out.strip().split("/")[-2]
    )
    assert str(tmp_path) in out


@pytest.mark.parametrize("var", ["AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "VERCEL"])
def test_serverless_runtime_warns_once_about_local_files(tmp_path: Path, var: str) -> None:
    proc = run_python(
        "from botwire import Memory\nMemory('a').set('k', 1)\nMemory('b').get('k')",
        env={var: "1", "HOME": str(tmp_path)},
    )
    assert proc.stderr.count("BotWireWarning") == 1
    assert "BOTWIRE_URL" in proc.stderr and "cold starts" in proc.stderr


def test_no_warning_outside_serverless(tmp_path: Path) -> None:
    proc = run_python(
        "from botwire import Memory\nMemory('a').set('k', 1)", env={"HOME": str(tmp_path)}
    )
    assert "Warning" not in proc.stderr


def test_debug_logs_each_operation_with_milliseconds(tmp_path: Path) -> None:
    proc = run_python(
        "from botwire import Memory\nm = Memory('dbg')\nm.set('k', 1)\nm.get('k')\nm.get('zz')",
        env={"HOME": str(tmp_path), "BOTWIRE_DEBUG": "1"},
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("botwire:")]
    assert len(lines) == 3
    assert "set 'k'" in lines[0] and "sqlite:///" in lines[0] and " ms" in lines[0]
    assert "get 'dbg'/'k'" in lines[1] and "ok" in lines[1]


def test_memory_is_a_context_manager_and_shares_backends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    with Memory("a", url=url) as a, Memory("b", url=url) as b:
        assert a._store is b._store
        a.set("k", 1)
        assert a.with_namespace("b")._store is a._store
    c = Memory("c", url=url)
    c.set("k", 2)
    assert c.get("k") == 2
    c.close()
    c.close()  # closing twice is harmless
    assert "Memory('a'" in repr(a)
