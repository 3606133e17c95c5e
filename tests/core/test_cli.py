"""The ``botwire`` command, run as a user would: a real process, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "BOTWIRE_URL": f"sqlite:///{tmp_path}/cli.db"}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "botwire.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_set_get_ls_rm(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("set", "u1", "prefs", '{"tone": "brief"}').returncode == 0
    assert cli("set", "u1", "n", "5").returncode == 0
    assert cli("set", "u1", "s", "hello world", "--string").returncode == 0
    assert json.loads(cli("get", "u1", "prefs").stdout) == {"tone": "brief"}
    assert cli("get", "u1", "n").stdout.strip() == "5"
    assert cli("get", "u1", "s", "--raw").stdout == "hello world\n"
    assert cli("ls", "u1").stdout.split() == ["n", "prefs", "s"]
    assert cli("ls", "u1", "--prefix", "p").stdout.split() == ["prefs"]
    usage = json.loads(cli("usage", "u1").stdout)
    assert usage["keys"] == 3 and usage["writes_today"] == 3
    assert cli("rm", "u1", "n").returncode == 0
    missing = cli("get", "u1", "n")
    assert missing.returncode == 1 and "no key 'n'" in missing.stderr


def test_errors_have_exit_codes_and_say_what_to_do(cli) -> None:  # type: ignore[no-untyped-def]
    bad_json = cli("set", "u1", "k", "not json")
    assert bad_json.returncode == 2 and "--string" in bad_json.stderr
    bad_ns = cli("get", "bad namespace", "k")
    assert bad_ns.returncode == 2 and "namespace" in bad_ns.stderr
    down = cli("--url", "http://127.0.0.1:9", "get", "u1", "k")
    assert down.returncode == 4 and "could not be reached" in down.stderr
    assert cli("rm", "u1", "never-there").returncode == 1


def test_export_import_round_trip(cli) -> None:  # type: ignore[no-untyped-def]
    records = "".join(
        json.dumps({"key": f"k{i:04d}", "value": {"i": i, "s": "é"}}) + "\n" for i in range(2500)
    )
    imported = cli("import", "src", stdin=records)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2500 entries" in imported.stderr
    exported = cli("export", "src")
    assert exported.returncode == 0
    lines = exported.stdout.splitlines()
    assert len(lines) == 2500 and json.loads(lines[7]) == {
        "key": "k0007",
        "value": {"i": 7, "s": "é"},
    }
    assert "exported 2500 entries" in exported.stderr
    assert cli("import", "dst", stdin=exported.stdout).returncode == 0
    assert cli("export", "dst").stdout == exported.stdout
    bad = cli("import", "dst", stdin="{not json}\n")
    assert bad.returncode == 2 and "line 1" in bad.stderr
