"""Several processes share one SQLite file; every invocation is a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from botwire import Memory
from botwire.store import SQLiteStore

WRITER = """
import sys
from botwire import Memory
m = Memory("shared", url=sys.argv[1])
w = int(sys.argv[2])
for i in range({per}):
    m.append("log", {{"w": w, "i": i}})
    m.incr("count")
"""


def test_eight_processes_append_to_one_key_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    procs, per = 8, 200
    code = WRITER.format(per=per)
    running = [
        subprocess.Popen([sys.executable, "-c", code, url, str(w)], stderr=subprocess.PIPE)
        for w in range(procs)
    ]
    for p in running:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    m = Memory("shared", url=url)
    log = m.get("log")
    assert len(log) == procs * per == 1600
    assert m.get("count") == 1600
    for w in range(procs):
        assert [x["i"] for x in log if x["w"] == w] == list(range(per))
    assert SQLiteStore(f"{tmp_path}/shared.db").integrity_check() == "ok"


LAMBDA = """
import os, sys
sys.path.insert(0, {examples!r})
from aws_lambda_design_example import lambda_handler

class Context:
    aws_request_id = os.environ["REQUEST_ID"]

print(lambda_handler({{"user_id": "alice", "message": sys.argv[1]}}, Context())["response"])
"""


def test_design_lambda_example_remembers_across_processes(tmp_path: Path) -> None:
    """DESIGN §0's Lambda handler, each invocation a fresh process sharing only BOTWIRE_URL."""
    examples = str(Path(__file__).parents[2] / "examples")
    env = {**os.environ, "BOTWIRE_URL": f"sqlite:///{tmp_path}/lambda.db"}
    for n, message in enumerate(["hello", "remember me?"]):
        env["REQUEST_ID"] = f"req-{n}"
        out = subprocess.run(
            [sys.executable, "-c", LAMBDA.format(examples=examples), message],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert f"turn {n + 1}" in out
    m = Memory("user-alice", url=env["BOTWIRE_URL"])
    history = m.get("chat_history")
    assert [h["user"] for h in history] == ["hello", "remember me?"]
    assert [h["timestamp"] for h in history] == ["req-0", "req-1"]
    assert m.get("last_interaction") == {"timestamp": "2024-01-15"}
