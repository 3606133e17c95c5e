"""Serverless, honestly: each turn is a fresh process; concurrent savers lose nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support.adapters import race_processes, start_worker, worker_result

from botwire import Memory
from botwire_agent_framework import BotWireHistoryProvider

WORKER = Path(__file__).with_name("af_worker.py")


def test_three_turns_in_three_fresh_processes(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    outs = []
    for n in (1, 2, 3):
        t0 = time.perf_counter()
        outs.append(worker_result(start_worker(WORKER, subprocess_env, "turn", ns, "ada", str(n))))
        print(f"FIGURE agent-framework turn {n} fresh process: {time.perf_counter() - t0:.2f} s")
    assert [o["restored"] for o in outs] == [False, True, True]
    assert [o["turns"] for o in outs] == [1, 2, 3]
    assert outs[0]["answer"] == "Nice to meet you, Ada."
    # Turn 1 ran the real tool loop: the model saw its own call and the tool's result.
    assert outs[0]["seen"][1][1:] == [
        'assistant: call remember({"fact": "Ada drinks green tea"})',
        "tool: result noted: Ada drinks green tea",
    ]
    # The third invocation's model sees both earlier turns, in order, then the new question.
    assert outs[2]["seen"] == [
        [
            "user: I am Ada and I drink green tea.",
            'assistant: call remember({"fact": "Ada drinks green tea"})',
            "tool: result noted: Ada drinks green tea",
            "assistant: Nice to meet you, Ada.",
            "user: I live in Oslo.",
            "assistant: Oslo is lovely.",
            "user: What do you know about me?",
        ]
    ]
    # What is stored is plain JSON a non-Python reader can use.
    with Memory(ns, url=memory_url) as m:
        stored = m.get("agent_framework/history/ada")
        snapshot = m.get("agent_framework/session/ada")
    assert [item["role"] for item in stored] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert snapshot["session_id"] == "ada" and snapshot["state"]["turns"] == 3


def test_six_processes_save_to_one_session_and_lose_nothing(
    memory_url: str, ns: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    writers, saves = 6, 25
    go = tmp_path / "go"
    t0 = time.perf_counter()
    race_processes(
        WORKER,
        [["save", ns, "shared", f"w{w}", str(saves), str(go)] for w in range(writers)],
        subprocess_env,
        go,
    )
    print(
        f"FIGURE agent-framework {writers}x{saves} save_messages: {time.perf_counter() - t0:.2f} s"
    )

    async def read() -> list[str]:
        history = BotWireHistoryProvider(namespace=ns, url=memory_url)
        messages = await history.get_messages("shared")
        await history.aclose()
        return [m.text for m in messages]

    got = asyncio.run(read())
    assert len(got) == writers * saves * 2
    assert sorted(got) == sorted(
        f"w{w}-{i}-{part}" for w in range(writers) for i in range(saves) for part in "qa"
    )
    for w in range(writers):
        mine = [t for t in got if t.startswith(f"w{w}-")]
        # Each writer's saves stay in its order, and each save's pair stays together (one append).
        assert mine == [f"w{w}-{i}-{part}" for i in range(saves) for part in "qa"]
    for k in range(0, len(got), 2):
        assert got[k].endswith("-q") and got[k + 1] == got[k][:-1] + "a"
