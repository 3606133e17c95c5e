"""``botwire queue put|claim|ack|nack|stats|dead``: real ``botwire`` processes against a real
server, handing a receipt from one process to the next as a shell script would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("queue-cli") / "q.db") as s:
        yield s


def _cli(server: ServerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botwire.cli", "--url", server.url, "queue", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_put_claim_ack_across_processes(server: ServerProcess, ns: str) -> None:
    put = _cli(server, "put", ns, "jobs", '{"doc": "a.pdf"}')
    assert put.returncode == 0, put.stderr
    ident = put.stdout.strip()
    put2 = _cli(server, "put", ns, "jobs", "-", "--delay", "60", stdin='"later"')
    assert put2.returncode == 0, put2.stderr
    stats = _cli(server, "stats", ns, "jobs")
    assert json.loads(stats.stdout) == {"ready": 1, "claimed": 0, "delayed": 1, "dead": 0}

    claim = _cli(server, "claim", ns, "jobs", "--visibility", "60")
    assert claim.returncode == 0, claim.stderr
    got = json.loads(claim.stdout)
    assert got["id"] == ident and got["item"] == {"doc": "a.pdf"} and got["claims"] == 1
    empty = _cli(server, "claim", ns, "jobs", "--wait", "0.2")
    assert empty.returncode == 1 and "nothing to claim in queue 'jobs'" in empty.stderr

    nack = _cli(server, "nack", ns, "jobs", got["receipt"])  # a receipt from another process
    assert nack.returncode == 0, nack.stderr
    again = json.loads(_cli(server, "claim", ns, "jobs").stdout)
    assert again["id"] == ident and again["claims"] == 2
    late = _cli(server, "ack", ns, "jobs", got["receipt"])  # the old receipt: claimed again since
    assert late.returncode == 3 and "processed twice" in late.stderr
    ack = _cli(server, "ack", ns, "jobs", again["receipt"])
    assert ack.returncode == 0, ack.stderr
    stats = _cli(server, "stats", ns, "jobs")
    assert json.loads(stats.stdout) == {"ready": 0, "claimed": 0, "delayed": 1, "dead": 0}


def test_dead_letters_and_bad_input(server: ServerProcess, ns: str, tmp_path: Path) -> None:
    assert _cli(server, "put", ns, "poison", "[1, 2]").returncode == 0
    for _ in range(2):
        got = json.loads(_cli(server, "claim", ns, "poison", "--max-claims", "2").stdout)
        assert _cli(server, "nack", ns, "poison", got["receipt"]).returncode == 0
    gone = _cli(server, "claim", ns, "poison", "--max-claims", "2")
    assert gone.returncode == 1
    dead = [json.loads(line) for line in _cli(server, "dead", ns, "poison").stdout.splitlines()]
    assert [(d["item"], d["claims"]) for d in dead] == [([1, 2], 2)]

    not_json = _cli(server, "put", ns, "jobs", "{oops")
    assert not_json.returncode == 2 and "is not JSON" in not_json.stderr
    bad = _cli(server, "ack", ns, "jobs", "nonsense")
    assert bad.returncode == 2 and "is not a receipt of queue 'jobs'" in bad.stderr
    slash = _cli(server, "put", ns, "a/b", "1")
    assert slash.returncode == 2 and "without '/'" in slash.stderr
