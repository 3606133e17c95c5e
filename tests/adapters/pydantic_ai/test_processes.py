"""Serverless, honestly: each invocation a fresh process, on the embedded store and a server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pa_helpers import user_prompts
from support.adapters import race_processes, start_worker, worker_result

from botwire_pydantic_ai import BotWireConversationStore

WORKER = Path(__file__).with_name("pa_worker.py")


def test_three_turns_three_processes(
    ns: str, both_urls: list[str], subprocess_env: dict[str, str]
) -> None:
    turns = ("I am Ada", "I like tea", "What do I like?")
    per_process = [
        worker_result(start_worker(WORKER, subprocess_env, "turn", ",".join(both_urls), ns, t))
        for t in turns
    ]
    for backend in range(len(both_urls)):  # embedded, then HTTP
        outs = [p[backend] for p in per_process]
        assert outs[0] == {"store": "saw 1: I am Ada", "history": "saw 1: I am Ada"}
        # The third invocation's model saw the first two turns, loaded from botwire.
        third = "saw 3: I am Ada | I like tea | What do I like?"
        assert outs[2] == {"store": third, "history": third}


def test_six_processes_save_one_conversation_lose_nothing(
    ns: str, both_urls: list[str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    writers, n = 6, 25
    started = time.monotonic()
    race_processes(
        WORKER,
        [
            ["save", ",".join(both_urls), ns, f"w{w}", str(n), str(tmp_path / "go")]
            for w in range(writers)
        ],
        subprocess_env,
        tmp_path / "go",
    )
    conflicts = sum(int(p.read_text()) for p in tmp_path.glob("go.conflicts-*"))
    print(f"FIGURE pydantic-ai race: {conflicts} ConversationConflict retries (both backends)")
    print(
        f"FIGURE pydantic-ai {writers} processes x {n} saves x 2 backends: "
        f"{time.monotonic() - started:.1f} s including imports"
    )

    async def stored(url: str) -> list[str]:
        store = BotWireConversationStore(ns, url=url)
        conversation = await store.load("busy")
        await store.aclose()
        assert conversation is not None
        return user_prompts(conversation.messages)

    for url in both_urls:
        got = asyncio.run(stored(url))
        assert sorted(got) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(n)), url
        for w in range(writers):  # each writer's saves stay in its own order
            assert [x for x in got if x.startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(n)]
