"""Serverless, honestly: each invocation a fresh process, on the embedded store and a real server.

Importing the Agents SDK costs seconds of CPU per process, so the tests start few: each worker
does its work on both backends (``both_urls``), and three invocations carry both the chat and
the paused-run stories (oa_worker.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.adapters import race_processes, start_worker, worker_result

from botwire import Memory
from botwire_openai_agents import SESSION_KEY_PREFIX

WORKER = Path(__file__).with_name("oa_worker.py")


def _check_story(outs: list[dict[str, Any]]) -> None:
    chat = [o["turn"] for o in outs]
    assert chat[0]["output"] == "saw 1 user messages: I am Ada"
    # The third invocation's model got the first two turns from botwire, then the new one.
    assert chat[2]["output"] == "saw 3 user messages: I am Ada | I like tea | What do I like?"
    assert chat[2]["model_saw"] == [
        "I am Ada",
        "saw 1 user messages: I am Ada",
        "I like tea",
        "saw 2 user messages: I am Ada | I like tea",
        "What do I like?",
    ]
    # The refund paused in invocation 1 and was parked; invocation 2 approved and resumed it.
    assert outs[0]["park"] == {"paused_on": ["refund"]}
    resumed = outs[1]["resume"]
    assert resumed["resumed"] is True
    assert resumed["output"] == (
        "saw 1 user messages: please refund my order | tool said refunded 120"
    )
    assert resumed["again"] is False  # claimed: the refund cannot run twice
    assert resumed["history_types"] == ["user", "function_call", "function_call_output", "message"]
    # Invocation 3 (a duplicate approval webhook) finds nothing to resume.
    assert outs[2]["resume"] == {"resumed": False}


def test_three_invocations_three_processes(
    ns: str, both_urls: list[str], subprocess_env: dict[str, str]
) -> None:
    urls = ",".join(both_urls)
    per_process = [
        worker_result(start_worker(WORKER, subprocess_env, "invocation", urls, ns, str(n), t))
        for n, t in ((1, "I am Ada"), (2, "I like tea"), (3, "What do I like?"))
    ]
    for backend in range(len(both_urls)):  # embedded, then HTTP
        _check_story([outs[backend] for outs in per_process])


def test_six_processes_add_items_lose_nothing(
    ns: str, both_urls: list[str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    writers, n = 6, 25
    started = time.monotonic()
    race_processes(
        WORKER,
        [
            ["add", ",".join(both_urls), ns, "busy", f"w{w}", str(n), str(tmp_path / "go")]
            for w in range(writers)
        ],
        subprocess_env,
        tmp_path / "go",
    )
    print(
        f"FIGURE openai-agents {writers} processes x {n} add_items x 2 backends: "
        f"{time.monotonic() - started:.1f} s including imports"
    )
    for url in both_urls:
        with Memory(ns, url=url) as m:
            items = [i["content"] for i in m.get(SESSION_KEY_PREFIX + "busy")]
        assert len(items) == writers * n * 2, url
        assert sorted(items) == sorted(
            f"w{w}-{i}-{x}" for w in range(writers) for i in range(n) for x in "qa"
        )
        for k in range(0, len(items), 2):  # one add_items call stays one contiguous pair
            assert items[k].endswith("-q") and items[k + 1] == items[k][:-1] + "a"
        for w in range(writers):  # each writer's calls stay in its own order
            mine = [x for x in items if x.startswith(f"w{w}-")]
            assert mine == [f"w{w}-{i}-{x}" for i in range(n) for x in "qa"]
