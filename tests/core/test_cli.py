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


# -- issue 19 item 6: --version, TTLs kept, atomic re-runnable imports, progress, --help ------


def _lines(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _entries(url: str, ns: str) -> dict[str, tuple[object, float | None]]:
    from botwire import Memory

    with Memory(ns, url=url) as m:
        return {k: (e.value, e.expires_at) for k, e in m.entries(m.list()).items()}


def test_version_is_the_installed_distributions_and_looked_up_lazily(cli) -> None:  # type: ignore[no-untyped-def]
    from importlib.metadata import version

    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith(f"botwire {version('botwire-core')} ")
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, botwire.cli; print('importlib.metadata' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "False"  # only --version pays for importlib.metadata


def test_export_keeps_the_absolute_deadline_and_import_restores_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/cli.db"
    assert cli("set", "src", "session", "[1, 2]", "--ttl", "3600").returncode == 0
    assert cli("set", "src", "profile", '{"tone": "brief"}').returncode == 0
    exported = cli("export", "src")
    assert exported.returncode == 0, exported.stderr
    by_key = {r["key"]: r for r in map(json.loads, exported.stdout.splitlines())}
    assert set(by_key["profile"]) == {"key", "value"}  # no TTL, no field
    source = _entries(url, "src")
    assert by_key["session"]["expires_at"] == source["session"][1]
    assert "exported 2 entries (1 with expires_at)" in exported.stderr
    imported = cli("import", "dst", stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    copy = _entries(url, "dst")
    assert copy["profile"] == ({"tone": "brief"}, None)
    assert copy["session"][0] == [1, 2]
    # The same deadline (to the clock's reading between two processes), not a fresh hour.
    assert abs(copy["session"][1] - source["session"][1]) < 5  # type: ignore[operator]
    # An entry whose deadline passed while the file waited is skipped and counted, not revived.
    stale = _lines([{"key": "gone", "value": 1, "expires_at": 1_000_000_000.0}])
    late = cli("import", "dst", stdin=stale)
    assert late.returncode == 0 and "skipped 1 whose expires_at had passed" in late.stderr
    assert "gone" not in _entries(url, "dst")


def test_export_names_keys_that_vanish_while_it_runs(tmp_path: Path) -> None:
    from botwire import Memory

    url = f"sqlite:///{tmp_path}/cli.db"
    with Memory("big", url=url) as m:
        for start in range(0, 600, 100):
            m.set_many({f"k{i:04d}": "x" * 20_000 for i in range(start, start + 100)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "botwire.cli", "export", "big"],
        env={**os.environ, "BOTWIRE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The first line means the page of 600 keys is listed; the export now blocks writing
        # its first 100 entries (2 MB) into the pipe, long before it reads key k0500.
        assert proc.stdout is not None and proc.stdout.readline().startswith(b'{"key": "k0000"')
        with Memory("big", url=url) as m:
            assert m.delete("k0500")
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert len(rest.splitlines()) == 598 and b'"k0500"' not in rest
    assert "1 keys expired or were deleted during the export and are not in it: 'k0500'" in (
        err.decode()
    )


def test_a_bad_line_stops_before_its_chunk_says_what_was_written_and_a_rerun_finishes(
    cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    records: list[dict[str, object]] = [{"key": f"k{i:04d}", "value": i} for i in range(300)]
    records[150] = {"key": "k0150", "valeu": 150}  # a typo on line 151
    first = cli("import", "dst", stdin=_lines(records))
    assert first.returncode == 2
    assert "stopped at line 151 (key 'k0150')" in first.stderr
    assert "unknown field(s) ['valeu']" in first.stderr
    assert "lines 1-100 were written (100 entries, 100 distinct keys)" in first.stderr
    assert "nothing from line 101 on was written" in first.stderr
    assert "re-run the same command" in first.stderr
    assert sorted(_entries(url, "dst")) == [f"k{i:04d}" for i in range(100)]  # exactly that
    records[150] = {"key": "k0150", "value": 150}
    fixed = _lines(records)
    assert cli("import", "dst", stdin=fixed).returncode == 0
    once = cli("export", "dst").stdout
    assert cli("import", "dst", stdin=fixed).returncode == 0  # and again: the same result
    assert (
        cli("export", "dst").stdout
        == once
        == "".join(json.dumps({"key": f"k{i:04d}", "value": i}) + "\n" for i in range(300))
    )


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        ({"key": "", "value": 1}, "key"),
        ({"key": 7, "value": 1}, "'key' must be a string"),
        ({"key": "a", "value": 1, "ttl": 5, "expires_at": 9e9}, "both 'expires_at' and 'ttl'"),
        ({"key": "a", "value": 1, "ttl": -1}, "ttl"),
        ({"key": "a", "value": 1, "expires_at": "tomorrow"}, "seconds since the epoch"),
        ({"key": "a"}, "needs both 'key' and 'value'"),
        ([1, 2], "not an object"),
        ({"key": "a", "value": 1, "expires_at": 99999999999}, "'expires_at' 99999999999 is not"),
        ({"key": "a", "value": 1, "expires_at": 10**400}, "~317 years"),  # past a float
    ],
)
def test_each_broken_rule_is_named_with_its_line(cli, record: object, rule: str) -> None:  # type: ignore[no-untyped-def]
    out = cli("import", "dst", stdin='{"key": "ok", "value": 0}\n' + json.dumps(record) + "\n")
    assert out.returncode == 2 and "line 2" in out.stderr and rule in out.stderr, out.stderr
    assert "nothing was written. The import only sets keys" in out.stderr
    assert cli("get", "dst", "ok").returncode == 1  # the chunk holding line 2 was not written


def test_json_nested_past_the_parsers_depth_is_a_usage_error_not_a_traceback(cli) -> None:  # type: ignore[no-untyped-def]
    deep = "[" * 100_000 + "]" * 100_000  # valid JSON that Python's parser cannot read
    out = cli(
        "import", "dst", stdin='{"key": "ok", "value": 0}\n{"key": "bad", "value": ' + deep + "}\n"
    )
    assert out.returncode == 2 and "line 2" in out.stderr, out.stderr
    assert "nests JSON too deeply" in out.stderr and "Traceback" not in out.stderr
    assert "nothing was written. The import only sets keys" in out.stderr
    for args in (("set", "ns", "k", "-"), ("queue", "put", "ns", "jobs", "-")):
        out = cli(*args, stdin=deep)
        assert out.returncode == 2 and "nests too deeply" in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_a_refused_chunk_is_all_or_nothing_and_reported(tmp_path: Path) -> None:
    from support.server import running_server

    records = _lines([{"key": f"k{i:04d}", "value": i} for i in range(300)])
    with running_server("--max-keys", "150", database=tmp_path / "q.db") as server:
        env = {**os.environ, "BOTWIRE_URL": server.url}
        out = subprocess.run(
            [sys.executable, "-m", "botwire.cli", "import", "dst"],
            input=records,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 3, out.stderr
        assert "stopped at the chunk of lines 101-200" in out.stderr
        assert "lines 1-100 were written (100 entries" in out.stderr
        assert "nothing from line 101 on was written (a chunk is all-or-nothing)" in out.stderr
        assert len(_entries(server.url, "dst")) == 100


def _on_a_terminal(args: list[str], stdin_path: Path | None, url: str) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns its exit code and what it showed."""
    import pty

    leader, follower = pty.openpty()
    shown = b""
    try:
        with open(stdin_path or os.devnull, "rb") as stdin:
            proc = subprocess.run(
                [sys.executable, "-m", "botwire.cli", *args],
                stdin=stdin,
                stderr=follower,
                stdout=subprocess.DEVNULL,
                timeout=120,
                env={**os.environ, "BOTWIRE_URL": url},
            )
        os.close(follower)
        follower = -1
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    return proc.returncode, shown.decode()


def test_progress_line_on_a_terminal_only(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/cli.db"
    data = tmp_path / "in.jsonl"
    data.write_text(_lines([{"key": f"k{i:05d}", "value": i} for i in range(3000)]))
    plain = cli("import", "piped", stdin=data.read_text())
    assert plain.returncode == 0 and plain.stderr == "botwire: imported 3000 entries into 'piped'\n"
    assert "\r" not in cli("export", "piped").stderr  # a pipe: the summary line only
    code, text = _on_a_terminal(["import", "tty"], data, url)
    print(f"FIGURE terminal stderr of import: {text!r}")
    assert code == 0
    assert "\rbotwire: imported " in text and "/s, " in text and "ETA " in text
    assert "botwire: imported 3000 entries into 'tty' [" in text
    code, text = _on_a_terminal(["export", "tty"], None, url)
    print(f"FIGURE terminal stderr of export: {text!r}")
    assert code == 0 and "\rbotwire: exported " in text and "ETA " in text
    assert "botwire: exported 3000 entries (0 with expires_at) [" in text


def test_export_and_import_help_describe_the_format(cli) -> None:  # type: ignore[no-untyped-def]
    for command in ("export", "import"):
        text = cli(command, "--help").stdout
        for words in ("one JSON object per line", "expires_at", "key ", "value "):
            assert words in text, (command, words)
    assert "atomic chunks of 100" in cli("import", "--help").stdout
    assert "re-running the same" in cli("import", "--help").stdout.lower().replace("\n", " ")


def _wait_for_keys(url: str, ns: str, count: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while len(_entries(url, ns)) < count:
        assert time.monotonic() < deadline, f"{ns} never reached {count} keys"
        time.sleep(0.05)


def _start_import(url: str, lines: str, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "botwire.cli", "import", "dst"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "BOTWIRE_URL": url, **env},
    )
    assert proc.stdin is not None
    proc.stdin.write(lines)
    proc.stdin.flush()
    return proc


def test_ctrl_c_mid_import_says_what_is_stored(tmp_path: Path) -> None:
    import signal

    url = f"sqlite:///{tmp_path}/cli.db"
    lines = _lines([{"key": f"k{i:04d}", "value": i} for i in range(150)])
    proc = _start_import(url, lines)
    try:
        _wait_for_keys(url, "dst", 100)  # chunk 1 is in; the import waits for line 151
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted at line 150" in err
    assert "lines 1-100 were written (100 entries, 100 distinct keys)" in err
    assert "nothing from line 101 on was written" in err and "Traceback" not in err
    assert len(_entries(url, "dst")) == 100


def test_an_outage_mid_import_is_reported_and_a_rerun_after_it_finishes(tmp_path: Path) -> None:
    from support.server import running_server

    records = [{"key": f"k{i:04d}", "value": i} for i in range(300)]
    db = tmp_path / "srv.db"
    with running_server(database=db) as server:
        proc = _start_import(server.url, _lines(records[:150]), BOTWIRE_RETRIES="0")
        try:
            _wait_for_keys(server.url, "dst", 100)
            server.stop()  # the store goes away with lines 101-150 in the pending chunk
            _, err = proc.communicate(_lines(records[150:]), timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 4, err
    assert "stopped at the chunk of lines 101-200" in err
    assert "lines 1-100 were written (100 entries" in err
    assert "lines 101-200 may or may not have been written" in err
    with running_server(database=db) as back:  # the same data, the store is back
        env = {**os.environ, "BOTWIRE_URL": back.url}
        rerun = subprocess.run(
            [sys.executable, "-m", "botwire.cli", "import", "dst"],
            input=_lines(records),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert _entries(back.url, "dst") == {f"k{i:04d}": (i, None) for i in range(300)}
