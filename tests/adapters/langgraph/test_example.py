"""``examples/langgraph_lambda.py`` runs as documented: each invocation a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "langgraph_lambda.py"


def _invoke(memory_url: str, job: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), job],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BOTWIRE_URL": memory_url},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lambda_example_pauses_and_resumes(memory_url: str) -> None:
    job, other = f"report-{uuid.uuid4().hex}", f"report-{uuid.uuid4().hex}"
    # the fake clock allows two steps per invocation: 5 steps take 3 invocations
    assert _invoke(memory_url, job) == {"status": "in_progress", "next": ["draft"]}
    assert _invoke(memory_url, job) == {"status": "in_progress", "next": ["publish"]}
    third = _invoke(memory_url, job)
    assert third == {
        "status": "done",
        "result": [f"{s}: kettles" for s in ("research", "outline", "draft", "review", "publish")],
    }
    assert _invoke(memory_url, job) == third  # a finished job is not run again
    assert _invoke(memory_url, other)["status"] == "in_progress"  # threads are separate
