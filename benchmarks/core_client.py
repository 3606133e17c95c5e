"""Core client figures, each against a baseline measured in the same run.

    uv run python benchmarks/core_client.py [--runs 15]

1. ``import botwire`` (and ``from botwire import Memory``) over a bare interpreter: median wall
   time of fresh processes, baseline ``python -c pass``; ``import json`` and ``import httpx`` for
   scale.
2. ``append`` to a 10,000-item list vs a 10-item list on the embedded store (median per call).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def process_ms(code: str, runs: int) -> float:
    subprocess.run([sys.executable, "-c", code], check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def append_us(calls: int, path: Path) -> tuple[float, float]:
    """Median µs per append on a 10-item and a 10,000-item list, calls interleaved so both
    lists see the same file, cache and machine load."""
    from botwire import Memory

    m = Memory("bench", url=f"sqlite:///{path}")
    for key, length in (("short", 10), ("long", 10_000)):
        for start in range(0, length, 1000):  # a batch holds at most 1,000 ops
            tx = m.atomic()
            for i in range(start, min(length, start + 1000)):
                tx.append(key, {"turn": i, "text": "x" * 80})
            tx.commit()
    samples: dict[str, list[float]] = {"short": [], "long": []}
    for i in range(calls):
        for key in ("short", "long") if i % 2 else ("long", "short"):
            t = time.perf_counter()
            m.append(key, {"turn": i, "text": "x" * 80})
            samples[key].append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples["short"]), statistics.median(samples["long"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args()

    bare = process_ms("pass", args.runs)
    rows = [("python -c pass (baseline)", bare)]
    for label, code in [
        ("import botwire", "import botwire"),
        ("from botwire import Memory", "from botwire import Memory"),
        ("import json", "import json"),
        ("import httpx", "import httpx"),
    ]:
        rows.append((label, process_ms(code, args.runs)))
    print("| process | median ms | over bare ms |\n|---|---:|---:|")
    for label, ms in rows:
        print(f"| {label} | {ms:.1f} | {ms - bare:+.1f} |")

    with tempfile.TemporaryDirectory() as tmp:
        short, long = append_us(args.calls, Path(tmp) / "a.db")
    print("\n| append to a list of | median µs per call |\n|---|---:|")
    print(f"| 10 items (baseline) | {short:.0f} |\n| 10,000 items | {long:.0f} |")
    print(f"\nratio 10,000 / 10 = {long / short:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
