"""Concurrent writers on one PostgreSQL database: threads, processes and several "replicas"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from botwire import Limits, Memory, QuotaExceeded
from botwire.store import Op
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]


def _run_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    if errors:
        raise errors[0]
    return results


def _check_all_items(items: list[dict[str, int]], writers: int, per_writer: int) -> None:
    assert len(items) == writers * per_writer
    for w in range(writers):
        assert [it["n"] for it in items if it["w"] == w] == list(range(per_writer))


def test_threads_appending_to_one_key(make_store: MakeStore, ns: str) -> None:
    store = make_store(max_size=8)
    mem = Memory(ns, store=store)

    def writer(w: int) -> list[tuple[int, int]]:
        out = []
        for n in range(100):
            item = json.dumps({"w": w, "n": n})
            result = store.batch(ns, [Op("append", "chat", items=(item,))])[0]
            out.append((result["length"], result["version"]))
        return out

    results = [x for r in _run_threads(8, writer) for x in r]
    _check_all_items(mem.get("chat"), 8, 100)
    assert sorted(length for length, _ in results) == list(range(1, 801))  # each length once
    versions = [version for _, version in sorted(results)]
    assert versions == sorted(set(versions))  # versions grow in commit order on one key
    usage = store.usage(ns)
    assert usage.keys == 1
    assert usage.writes_today == 800


_WORKER = """
import json, sys, time
from botwire import Memory
from botwire_server.storage.postgres import PostgresStore
url, ns = sys.argv[1], sys.argv[2]
w, n, start = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
store = PostgresStore(url, max_size=2)
mem = Memory(ns, store=store)
time.sleep(max(0.0, start - time.time()))
lengths = [mem.append("chat", {"w": w, "n": i}) for i in range(n)]
store.close()
print(json.dumps(lengths))
"""


def test_processes_appending_to_one_key(postgres_url: str, make_store: MakeStore, ns: str) -> None:
    start = time.time() + 3  # all four begin together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, postgres_url, ns, str(w), "100", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for w in range(4)
    ]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
            outputs.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    _check_all_items(Memory(ns, store=make_store()).get("chat"), 4, 100)
    assert sorted(x for out in outputs for x in out) == list(range(1, 401))


def test_writes_per_day_is_exact_across_replicas(make_store: MakeStore, ns: str) -> None:
    limits = Limits(writes_per_day=50)
    replicas = [make_store(limits=limits, max_size=8), make_store(limits=limits, max_size=8)]

    def writer(i: int) -> tuple[int, int, list[int]]:
        mem = Memory(ns, store=replicas[i % 2])
        ok = refused = 0
        versions = []
        for n in range(10):
            try:
                versions.append(mem.set(f"k{i}-{n}", n))
                ok += 1
            except QuotaExceeded:
                refused += 1
        return ok, refused, versions

    results = _run_threads(16, writer)
    assert sum(r[0] for r in results) == 50
    assert sum(r[1] for r in results) == 160 - 50
    versions = [v for r in results for v in r[2]]
    assert len(set(versions)) == 50
    for replica in replicas:
        usage = replica.usage(ns)
        assert usage.writes_today == 50
        assert usage.keys == 50


def test_incr_and_update_across_replicas(make_store: MakeStore, ns: str) -> None:
    replicas = [make_store(max_size=4), make_store(max_size=4)]

    def writer(i: int) -> None:
        mem = Memory(ns, store=replicas[i % 2])
        for _ in range(50):
            mem.incr("counter")
        for _ in range(10):
            mem.update("doc", lambda d: {"n": (d or {"n": 0})["n"] + 1})

    _run_threads(8, writer)
    mem = Memory(ns, store=replicas[0])
    assert mem.get("counter") == 400
    assert mem.get("doc") == {"n": 80}


def test_concurrent_if_absent_has_one_winner(make_store: MakeStore, ns: str) -> None:
    replicas = [make_store(max_size=8), make_store(max_size=8)]

    def writer(i: int) -> bool:
        from botwire import Conflict

        try:
            Memory(ns, store=replicas[i % 2]).set("lock", i, if_absent=True)
        except Conflict:
            return False
        return True

    for _round in range(5):
        Memory(ns, store=replicas[0]).delete("lock")
        assert sum(_run_threads(12, writer)) == 1


def test_max_len_trim_under_concurrency(make_store: MakeStore, ns: str) -> None:
    store = make_store(max_size=8)
    mem = Memory(ns, store=store)

    def writer(w: int) -> None:
        for n in range(50):
            mem.append("recent", {"w": w, "n": n}, max_len=20)

    _run_threads(6, writer)
    items = mem.get("recent")
    assert len(items) == 20
    for w in range(6):  # each writer's surviving items are still in its order
        ns_ = [it["n"] for it in items if it["w"] == w]
        assert ns_ == sorted(ns_)
    keys = store.list_keys(ns).keys
    assert keys[0].bytes == len(b"recent") + len(json.dumps(items, separators=(",", ":")).encode())
