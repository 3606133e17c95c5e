"""What idle watches cost a process: ``AsyncMemory`` watches waiting on embedded SQLite (no
write for 4 s), its threads and CPU, against the same process with no watch waiting (the
baseline, measured in the same run); then one write, and how long until every watch returned.

    uv run python benchmarks/idle_watches.py [--watches 10,100,300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time

from botwire import AsyncMemory

IDLE_SECONDS = 4.0


async def _measure(url: str, count: int) -> tuple[int, float, float]:
    """Threads over the baseline, CPU share of a core while idle, ms until all woke."""
    async with AsyncMemory(f"idle-{count}", url=url) as memory:
        after = await memory.set("k", 0)
        await memory.get("k")
        before = threading.active_count()
        watches = [
            asyncio.create_task(memory.watch("k", after=after, timeout=60)) for _ in range(count)
        ]
        await asyncio.sleep(1.0)
        threads = threading.active_count() - before
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        t = time.perf_counter()
        await memory.set("k", 1)
        woke = await asyncio.gather(*watches)
        assert all(e is not None and e.value == 1 for e in woke)
        return threads, share, (time.perf_counter() - t) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", default="10,100,300")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/idle.db"
        _, base, _ = asyncio.run(_measure(url, 0))
        print(f"no watch waiting: {base * 100:.1f}% of a core")
        for count in (int(c) for c in args.watches.split(",")):
            threads, share, woke = asyncio.run(_measure(url, count))
            print(
                f"{count} idle watches: {threads} threads more, {share * 100:.1f}% of a core "
                f"({share - base:+.1%} over none); all woke {woke:.0f} ms after one write"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
