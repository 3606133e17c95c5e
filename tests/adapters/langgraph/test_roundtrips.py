"""Round trips per saver operation do not grow with the thread's history (runs
``benchmarks/langgraph_roundtrips.py``, which counts the Memory's store calls)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[3] / "benchmarks" / "langgraph_roundtrips.py"

EXPECTED = {
    "put": 1,
    "put_writes": 1,
    "step": 1,  # a task's writes ride with the checkpoint after them
    "get_tuple_latest": 1,  # the saver that wrote it knows its pointer: one batch
    "get_tuple_latest_cold": 2,  # another process's: the pointer, then what it names
    "get_tuple_by_id": 2,
    "list_limit_10": 3,
    "list_before_limit_10": 3,
}


def test_round_trips_are_constant_from_10_to_1000_checkpoints() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--sizes", "10", "1000"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = {int(n): f for n, f in json.loads(done.stdout).items()}
    for n in (10, 1000):
        got = {op: figures[n][op] for op in EXPECTED}
        assert got == EXPECTED, (n, figures[n])
    # listing a whole thread is the one read that grows: one index read, then two per 100
    assert figures[10]["list_all"] == 3
    assert figures[1000]["list_all"] == 1 + 2 * 11
