"""A FunctionAgent with MockFunctionCallingLLM keeps its memory in botwire: a second,
fresh process (a new serverless invocation) sees the first one's turn."""

from __future__ import annotations

import json

import pytest


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["buffer", "memory"])
def test_agent_memory_survives_the_process(run_script, namespace: str, kind: str) -> None:
    session = f"user/{kind} 🙂"  # chat keys may be any string
    first = _last_json(run_script("li_proc_agent.py", namespace, session, kind, "turn1").stdout)
    assert first["answer"] == "Noted: tea."
    assert first["history"] == [
        ["user", "I like tea.", []],
        ["assistant", "", ["remember"]],
        ["tool", "stored: likes tea", []],
        ["assistant", "Noted: tea.", []],
    ]

    second = _last_json(run_script("li_proc_agent.py", namespace, session, kind, "turn2").stdout)
    assert second["answer"] == "You like tea."
    # The LLM in the fresh process was shown the first process's whole turn.
    assert second["seen"][1:] == [
        ["user", "I like tea."],
        ["assistant", ""],
        ["tool", "stored: likes tea"],
        ["assistant", "Noted: tea."],
        ["user", "What do I like?"],
    ]
    assert [row[1] for row in second["history"]] == [
        "I like tea.",
        "",
        "stored: likes tea",
        "Noted: tea.",
        "What do I like?",
        "You like tea.",
    ]
