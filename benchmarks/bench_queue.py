"""P9: hand-off queue throughput (issue 18), against a same-run baseline.

One client over keep-alive HTTP to a real botwire-server (SQLite, and PostgreSQL when it can
start): put N items, then claim + ack each; the baseline moves the same N items by hand with
plain keys (``set`` each, then ``get`` + ``delete`` each), which gives no claim, no visibility
timeout, no redelivery and no dead letters. Rounds are interleaved; the figure is the median
ratio of items per second, queue over baseline.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from _common import Row, Settings, interleaved, log, median, postgres, server

from botwire import Memory

_round = itertools.count()


def _queue_round(m: Memory, n: int) -> float:
    q = m.queue(f"p9-{next(_round)}")
    t = time.perf_counter()
    for i in range(n):
        q.put({"task": i})
    for _ in range(n):
        c = q.claim(visibility=60)
        assert c is not None
        q.ack(c)
    return n / (time.perf_counter() - t)


def _plain_round(m: Memory, n: int) -> float:
    prefix = f"p9-plain-{next(_round)}/"
    t = time.perf_counter()
    for i in range(n):
        m.set(f"{prefix}{i:06d}", {"task": i})
    for i in range(n):
        m.get(f"{prefix}{i:06d}")
        m.delete(f"{prefix}{i:06d}")
    return n / (time.perf_counter() - t)


def _measure(url: str, n: int, rounds: int) -> dict[str, list[float]]:
    with Memory("p9-queue", url=url) as m:
        _queue_round(m, 20)  # warm up: connection open, server caches filled
        _plain_round(m, 20)
        fns: dict[str, Callable[[], float]] = {
            "queue": lambda: _queue_round(m, n),
            "plain": lambda: _plain_round(m, n),
        }
        return interleaved(fns, rounds)


def _row(engine: str, samples: dict[str, list[float]], n: int) -> Row:
    ratios = [q / p for q, p in zip(samples["queue"], samples["plain"], strict=True)]
    med = {k: median(v) for k, v in samples.items()}
    return Row(
        "P9",
        f"queue put + claim + ack, items/s, one client, {engine}",
        median(ratios),
        "×",
        f"`set` + `get` + `delete` of the same items = {med['plain']:.0f} items/s",
        "—",
        None,
        note=f"{med['queue']:.0f} items/s; {n} items a round",
        details={"items_per_s": samples, "round_ratios": ratios, "items_per_round": n},
    )


def p9_queue(settings: Settings) -> list[Row]:
    n = 100 if settings.quick else 300
    rounds = max(settings.rounds, 3)
    rows = []
    log("P9 queue throughput, SQLite server")
    with server() as srv:
        rows.append(_row("SQLite server", _measure(srv.url, n, rounds), n))
    with postgres(settings) as dsn:
        if dsn is not None:
            log("P9 queue throughput, PostgreSQL server")
            with server(database=dsn) as srv:
                rows.append(_row("PostgreSQL server", _measure(srv.url, n, rounds), n))
    return rows
