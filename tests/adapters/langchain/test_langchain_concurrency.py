"""Several processes appending to one chat history lose nothing and keep each
writer's order; each ``add_messages`` call lands as one contiguous block."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botwire_langchain import BotWireChatHistory

HERE = Path(__file__).parent
WRITERS = 6
PER_WRITER = 50


def _start_together(go: Path, procs: list[subprocess.Popen[str]]) -> None:
    """Touch ``go`` once every child has imported everything (so they really race)."""
    deadline = time.monotonic() + 240
    while len(list(go.parent.glob(go.name + ".ready-*"))) < len(procs):
        for p in procs:
            if p.poll() not in (None, 0):
                out, err = p.communicate()
                raise AssertionError(f"writer failed before start:\n{out}\n{err}")
        assert time.monotonic() < deadline, "writers never became ready"
        time.sleep(0.05)
    go.touch()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_concurrent_writers_lose_nothing(
    memory_url: str, namespace: str, tmp_path: Path, mode: str
) -> None:
    go = tmp_path / f"go-{mode}"
    env = dict(os.environ, BOTWIRE_URL=memory_url)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "lc_proc_writer.py"),
                namespace,
                "shared",
                f"w{w}",
                str(PER_WRITER),
                str(go),
                mode,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    _start_together(go, procs)
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, f"writer failed:\n{out}\n{err}"

    messages = BotWireChatHistory("shared", namespace=namespace, url=memory_url).messages
    contents = [str(m.content) for m in messages]
    assert len(contents) == WRITERS * PER_WRITER
    for w in range(WRITERS):
        mine = [c for c in contents if c.startswith(f"w{w}:")]
        assert mine == [f"w{w}:{i}" for i in range(PER_WRITER)], f"writer w{w} out of order"
    # Each add_messages pair is adjacent: one atomic append per call.
    for i in range(0, len(messages), 2):
        human, ai = messages[i], messages[i + 1]
        assert (human.type, ai.type) == ("human", "ai")
        writer, n = str(human.content).split(":")
        assert ai.content == f"{writer}:{int(n) + 1}"
