"""Concurrent writers through one backend lose nothing."""

from __future__ import annotations

import threading
from typing import Any


def test_threads_append_and_update_without_loss(backend: Any, ns: str) -> None:
    m = backend.memory(ns)
    threads, per = 8, 40
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per):
                m.append("log", [t, i])
                m.update("counter", lambda n: n + 1, default=0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert not errors
    log = m.get("log")
    assert len(log) == threads * per
    for t in range(threads):
        assert [i for tt, i in log if tt == t] == list(range(per))
    assert m.get("counter") == threads * per
