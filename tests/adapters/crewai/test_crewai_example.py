"""examples/crewai_research_crew.py runs as documented: two invocations, two fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from botwire import Memory

EXAMPLE = Path(__file__).parents[3] / "examples" / "crewai_research_crew.py"


def run_example(env: dict[str, str], topic: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), topic],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # CrewAI's event bus may print from a background thread, even onto the end of our line:
    # find the line and decode only the JSON value at its start.
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith('{"answer"'))
    value, _ = json.JSONDecoder().raw_decode(line)
    return value


def test_second_invocation_answers_from_memory(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "BOTWIRE_EXAMPLE_FAKE_MODEL": "1", "BOTWIRE_EXAMPLE_NAMESPACE": ns}
    first = run_example(env, "perovskite cells")
    assert first == {
        "answer": "Researched perovskite cells and saved my notes.",
        "keys": ["notes:perovskite cells"],
    }
    notes = Memory(ns, url=memory_url).get("notes:perovskite cells")
    assert notes == {
        "summary": "Top result for 'perovskite cells': efficiency records keep rising "
        "(source: example.org).",
        "sources": ["example.org"],
    }
    second = run_example(env, "perovskite cells")
    assert second["answer"] == f"From my notes: {notes['summary']}"
