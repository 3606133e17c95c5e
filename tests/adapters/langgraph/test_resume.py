"""A workflow cut off mid-way resumes in a fresh process, and finished work is not redone.

Each invocation is a fresh Python process (as on AWS Lambda). The first one is killed with
``os._exit`` during step 3, after its sibling task ``charge_card`` finished and was stored as a
pending write; the second resumes the thread from the checkpoint. Every tool must have run
exactly once across both processes, and the model must not have been asked again for the steps
already taken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AGENT = Path(__file__).with_name("_resumable_agent.py")


def _invoke(
    memory_url: str, namespace: str, thread: str, record: Path, durability: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(AGENT),
            memory_url,
            namespace,
            thread,
            str(record),
            durability,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(AGENT.parent)},
        check=False,
    )


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.mark.parametrize("durability", ["sync", "async"])
@pytest.mark.parametrize("crash", ["crash", "crash-watched"])
def test_resume_in_fresh_process_after_timeout(
    memory_url: str, namespace: str, tmp_path: Path, durability: str, crash: str
) -> None:
    """``crash-watched``: the finished sibling's writes are seen by another reader while the
    cut-off task still runs (they do not wait for a checkpoint that never comes)."""
    record = tmp_path / "calls.txt"

    first = _invoke(memory_url, namespace, "order-42", record, durability, crash)
    assert first.returncode == 17, first.stderr
    assert _lines(record) == [
        "model:0",
        "lookup_order",
        "model:1",
        "check_stock",
        "model:2",
        "charge_card",
    ]

    second = _invoke(memory_url, namespace, "order-42", record, durability)
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout.strip().splitlines()[-1])
    assert out == {"resumed": True, "answer": "Order 42 is paid, reserved and confirmed."}

    calls = _lines(record)
    tools = [c for c in calls if not c.startswith("model:")]
    assert tools == [
        "lookup_order",
        "check_stock",
        "charge_card",
        "reserve_shipping",  # the task that was cut off runs again ...
        "send_email",
    ]  # ... and the finished ones (charge_card included) do not
    assert calls[6:] == ["reserve_shipping", "model:4", "send_email", "model:5"]


def test_finished_thread_is_not_rerun(memory_url: str, namespace: str, tmp_path: Path) -> None:
    record = tmp_path / "calls.txt"
    assert _invoke(memory_url, namespace, "t-1", record, "sync").returncode == 0
    before = _lines(record)
    assert before.count("send_email") == 1
    again = _invoke(memory_url, namespace, "t-1", record, "sync")
    assert again.returncode == 0, again.stderr
    # invoke(None) on a finished thread runs nothing: no tool, no model call
    assert _lines(record) == before
