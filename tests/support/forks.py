"""Forked children for the fork-safety tests: each runs ``target(*args, index, results)`` and
puts one ``(index, wrong, traceback or None)`` on ``results``."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

FORK = multiprocessing.get_context("fork")


def run_forked(
    target: Callable[..., None],
    args: tuple[Any, ...],
    children: int,
    *,
    while_running: Callable[[], None] | None = None,
    timeout: float = 60,
) -> list[tuple[int, int, str | None]]:
    """Fork ``children`` processes of ``target(*args, i, results)``; run ``while_running`` in
    the parent meanwhile; their results sorted by index. A child that hangs (sharing a
    socket can leave it waiting for an answer another process took) fails after ``timeout``."""
    results = FORK.Queue()
    procs = [FORK.Process(target=target, args=(*args, i, results)) for i in range(children)]
    try:
        for p in procs:
            p.start()
        if while_running is not None:
            while_running()
        got = [results.get(timeout=timeout) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0, f"a child exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    return sorted(got)
