"""Where a botwire SET to PostgreSQL spends its time: ``py-spy record`` of one ``botwire-server``
process under SET load (issue 22's evidence).

A server on a durable throwaway cluster (as for P10-P15) is driven by 8 keep-alive writers (8
namespaces, the raw-asyncio generator) while ``py-spy`` (from the separate benchmark environment
of ``pg_reference.py``) samples every thread of the server. The collapsed stacks are written to
``benchmarks/results/pyspy-set-<UTC>.txt`` and summarised: the functions where samples end
(self time) and the functions on the stack (inclusive), by file, as shares of all samples of
threads that were not idle (py-spy counts a thread blocked in a C call, e.g. waiting for
PostgreSQL's answer, as active); ``--gil`` samples only the thread holding the GIL, i.e. where
the server's Python CPU goes.

    uv run python benchmarks/pg_pyspy.py [--seconds 15] [--rate 250]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Settings, log, server

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """``fn (path/to/file.py:12)`` -> ``fn (file.py)``; frames without a file stay as they are."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    parts = m.group("file").split("/")
    where = "/".join(parts[-2:]) if len(parts) > 1 else parts[-1]
    return f"{m.group('fn')} ({where})"


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the samples in ``py-spy --format raw`` output."""
    self_: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")[1:]]  # [0] is the process/thread
        if not frames:
            continue
        total += n
        self_[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    share = lambda c: [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)]  # noqa: E731
    return {"samples": total, "self_pct": share(self_), "inclusive_pct": share(incl)}


def record(seconds: float, rate: int, out: Path, gil: bool = False) -> dict[str, Any]:
    import pg_reference
    import pg_writes

    pyspy = str(Path(pg_reference.refenv_python()).parent / "py-spy")
    settings = Settings(quick=True, rounds=1, out=out.parent)
    with pg_reference.durable_postgres(settings) as dsn, server(database=dsn) as srv:
        assert dsn is not None
        writers = pg_writes._writers(8, 8, "spy")
        pg_writes._drive_many([(srv.port, writers)], 1.0)  # seed + warm
        result: list[Any] = []
        load = threading.Thread(
            target=lambda: result.extend(pg_writes._drive_many([(srv.port, writers)], seconds + 3))
        )
        load.start()
        time.sleep(1.0)
        subprocess.run(
            [
                pyspy,
                "record",
                "--pid",
                str(srv.proc.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                *(["--gil"] if gil else []),
            ],
            check=True,
            capture_output=True,
        )
        load.join()
    summary = summarise(out.read_text())
    summary["sets_per_s"] = result[0].rps if result else None
    summary["collapsed"] = str(out.relative_to(ROOT))
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=int, default=250, help="samples per second")
    ap.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL (where the Python CPU goes)",
    )
    args = ap.parse_args()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    s = record(args.seconds, args.rate, results / f"pyspy-set-{stamp}.txt", args.gil)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{s['samples']} samples, {s['sets_per_s']:.0f} SET/s, load average {load}")
    print(f"collapsed stacks: {s['collapsed']}\n\n| self % | function |\n|---:|---|")
    for f, pct in s["self_pct"]:
        print(f"| {pct} | `{f}` |")
    print("\n| inclusive % | function |\n|---:|---|")
    for f, pct in s["inclusive_pct"]:
        print(f"| {pct} | `{f}` |")
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
