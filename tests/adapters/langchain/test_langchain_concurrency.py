"""Several processes appending to one chat history lose nothing and keep each
writer's order; each ``add_messages`` call lands as one contiguous block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.adapters import race_processes

from botwire_langchain import BotWireChatHistory

HERE = Path(__file__).parent
WRITERS = 6
PER_WRITER = 50


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_concurrent_writers_lose_nothing(
    memory_url: str, namespace: str, tmp_path: Path, mode: str
) -> None:
    go = tmp_path / f"go-{mode}"
    env = dict(os.environ, BOTWIRE_URL=memory_url)
    args = [[namespace, "shared", f"w{w}", str(PER_WRITER), str(go), mode] for w in range(WRITERS)]
    race_processes(HERE / "lc_proc_writer.py", args, env, go)

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
