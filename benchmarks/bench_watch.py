"""P8: how soon a waiting client learns of a write, ``watch`` (a held long-poll, woken by the
server) against the same-run baseline of polling ``entry()`` every 100 ms, both on the same
writes to one botwire-server on SQLite, over loopback."""

from __future__ import annotations

import random
import statistics
import threading
import time

from _common import Row, Settings, log, server

from botwire import Memory

__all__ = ["p8_watch"]

POLL_EVERY = 0.1


def p8_watch(settings: Settings) -> list[Row]:
    writes = 15 if settings.quick else 40
    with server() as srv:
        writer = Memory("p8-watch", url=srv.url)
        start = writer.set("task", 0)
        woke: dict[str, dict[int, float]] = {"watch": {}, "poll": {}}
        requests = {"watch": 0, "poll": 0}
        stop = threading.Event()

        def watcher() -> None:
            with Memory("p8-watch", url=srv.url) as m:
                after = start
                while not stop.is_set():
                    requests["watch"] += 1
                    entry = m.watch("task", after=after, timeout=2)
                    if entry is not None:
                        woke["watch"][entry.version] = time.perf_counter()
                        after = entry.version

        def poller() -> None:
            with Memory("p8-watch", url=srv.url) as m:
                seen = start
                while not stop.is_set():
                    requests["poll"] += 1
                    entry = m.entry("task")
                    if entry is not None and entry.version > seen:
                        woke["poll"][entry.version] = time.perf_counter()
                        seen = entry.version
                    time.sleep(POLL_EVERY)

        threads = [threading.Thread(target=fn, daemon=True) for fn in (watcher, poller)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        wrote: dict[int, float] = {}
        for i in range(writes):
            time.sleep(random.uniform(0.15, 0.35))  # both are waiting; the poller at any phase
            before = time.perf_counter()
            wrote[writer.set("task", i + 1)] = before
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(5)
        writer.close()
    lat = {
        mode: [(woke[mode][v] - t) * 1000 for v, t in wrote.items() if v in woke[mode]]
        for mode in woke
    }
    missed = {mode: writes - len(lat[mode]) for mode in lat}
    med = {mode: statistics.median(lat[mode]) for mode in lat}
    p90 = {mode: statistics.quantiles(lat[mode], n=10)[-1] for mode in lat}
    log(f"  P8 watch median {med['watch']:.1f} ms, polling every 100 ms {med['poll']:.1f} ms")
    return [
        Row(
            "P8",
            "watch wake-up after a write (median, SQLite server, loopback)",
            med["watch"],
            "ms",
            f"polling `entry()` every 100 ms: {med['poll']:.1f} ms median, "
            f"p90 {p90['poll']:.1f} ms",
            "< 100 ms, and below polling",
            med["watch"] < 100 and med["watch"] < med["poll"],
            note=(
                f"p90 {p90['watch']:.1f} ms; {writes} writes; requests: watch "
                f"{requests['watch']}, polling {requests['poll']}; changes missed by "
                f"polling (coalesced) {missed['poll']}, by watch {missed['watch']}"
            ),
            details={"latency_ms": lat, "requests": requests},
        )
    ]
