"""Fork safety: a ``Memory`` / ``AsyncMemory`` built in a parent and used in forked children
(gunicorn ``--preload``, ``multiprocessing``, Celery prefork) never hands one process another's
answer, and a child never inherits a lock another thread held at the fork.

Before the fix, 6 forked readers x 150 ``get``s of their own key over HTTP read 72 wrong values:
the children shared the parent's pooled socket and each read whatever answer arrived.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from client_http.transport.conftest import Client
from support.forks import run_forked
from support.server import ServerProcess

from botwire import AsyncMemory, Memory

READERS = 6
GETS = 150
ctx = multiprocessing.get_context("fork")


def _reader(kind: str, memory: Any, index: int, results: Any, gets: int = GETS) -> None:
    """In a forked child: ``gets`` gets of its own key with the memory the parent built."""
    try:
        wrong = 0
        key = f"user-{index}"
        if kind == "sync":
            for _ in range(gets):
                if memory.get(key) != {"owner": key}:
                    wrong += 1
            memory.set(key + "-w", index)  # a write too, on the child's own connection
        else:

            async def run() -> int:
                bad = 0
                for _ in range(gets):
                    if await memory.get(key) != {"owner": key}:
                        bad += 1
                await memory.set(key + "-w", index)
                return bad

            wrong = asyncio.run(run())
        results.put((index, wrong, None))
    except BaseException:
        results.put((index, -1, traceback.format_exc()))


def _fork_readers(kind: str, memory: Any) -> list[tuple[int, int, str | None]]:
    return run_forked(_reader, (kind, memory), READERS, timeout=120)


def _parent_memory(kind: str, ns: str, url: str) -> Client:
    client = Client(kind, ns, url=url, timeout=10, retries=1)
    client.set_many({f"user-{i}": {"owner": f"user-{i}"} for i in range(READERS)})
    assert client.get("user-0") == {"owner": "user-0"}  # a pooled connection exists now
    return client


def test_forked_readers_over_http_never_read_another_process_answer(
    server: ServerProcess, ns: str, kind: str
) -> None:
    with _parent_memory(kind, ns, server.url) as parent:
        results = _fork_readers(kind, parent.memory)
        errors = [tb for _, _, tb in results if tb]
        assert not errors, errors[0]
        wrong = sum(w for _, w, _ in results)
        print(f"FIGURE fork {kind}: {READERS} readers x {GETS} gets, {wrong} wrong values")
        assert wrong == 0
        # The parent's own pooled connection still works after its children used theirs.
        assert parent.get("user-1") == {"owner": "user-1"}
        assert parent.get_many([f"user-{i}-w" for i in range(READERS)]) == {
            f"user-{i}-w": i for i in range(READERS)
        }


def test_forked_readers_on_the_embedded_store(tmp_path: Path, ns: str, kind: str) -> None:
    url = f"sqlite:///{tmp_path}/fork.db"
    with _parent_memory(kind, ns, url) as parent:
        results = _fork_readers(kind, parent.memory)
        errors = [tb for _, _, tb in results if tb]
        assert not errors, errors[0]
        assert sum(w for _, w, _ in results) == 0
        assert parent.get_many([f"user-{i}-w" for i in range(READERS)]) == {
            f"user-{i}-w": i for i in range(READERS)
        }
    import sqlite3

    with sqlite3.connect(tmp_path / "fork.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _busy(memory: Any, stop: threading.Event) -> None:
    if isinstance(memory, Memory):
        while not stop.is_set():
            memory.get("user-0")
        return

    async def run() -> None:
        while not stop.is_set():
            await memory.get("user-0")

    asyncio.run(run())


@pytest.mark.parametrize("backend", ["http", "sqlite"])
def test_a_child_forked_while_another_thread_uses_the_memory_does_not_hang(
    server: ServerProcess, tmp_path: Path, ns: str, backend: str, kind: str
) -> None:
    """Fork while a parent thread is inside a call (holding the store's lock, or inside
    SQLite): the child must get its own lock and connection, not wait forever on the parent's."""
    url = server.url if backend == "http" else f"sqlite:///{tmp_path}/busy.db"
    with Memory(ns, url=url) as setup:
        setup.set_many({f"user-{i}": {"owner": f"user-{i}"} for i in range(READERS)})
    memory: Any = (
        Memory(ns, url=url, timeout=5, retries=0)
        if kind == "sync"
        else AsyncMemory(ns, url=url, timeout=5, retries=0)
    )
    stop = threading.Event()
    thread = threading.Thread(target=_busy, args=(memory, stop))
    thread.start()
    try:
        hung = 0
        for round_ in range(20):  # 20 forks, each likely while the thread is mid-call
            results = ctx.Queue()
            p = ctx.Process(target=_reader, args=(kind, memory, round_ % READERS, results, 20))
            p.start()
            p.join(20)
            if p.is_alive():
                hung += 1
                p.kill()
                p.join(5)
                continue
            _index, wrong, tb = results.get(timeout=5)
            assert tb is None, tb
            assert wrong == 0
        assert hung == 0, f"{hung} of 20 children hung on a lock inherited from the parent"
    finally:
        stop.set()
        thread.join(10)
        if kind == "sync":
            memory.close()


def test_async_memory_used_in_children_after_the_parent_used_it(
    server: ServerProcess, ns: str
) -> None:
    """The parent keeps its event loop (and httpx client) alive across the fork; children run
    their own loops with the inherited AsyncMemory and get only their own values."""
    memory = AsyncMemory(ns, url=server.url, timeout=10, retries=1)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            memory.set_many({f"user-{i}": {"owner": f"user-{i}"} for i in range(READERS)})
        )
        results = _fork_readers("async", memory)
        assert all(tb is None for _, _, tb in results), results
        assert sum(w for _, w, _ in results) == 0
        assert loop.run_until_complete(memory.get("user-2")) == {"owner": "user-2"}
    finally:
        loop.run_until_complete(memory.aclose())
        loop.close()


def _write_busy(memory: Memory, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        memory.set("counter", n)


def test_fork_while_the_background_checkpointer_and_a_writer_run(
    tmp_path: Path, ns: str, kind: str
) -> None:
    """The server's SQLite store checkpoints from a thread of its own: a fork must not catch
    that thread (or a writer) inside SQLite; children open their own handle and checkpointer."""
    from botwire.backends._threaded import ThreadedAsyncStore
    from botwire.store import SQLiteStore

    store = SQLiteStore(tmp_path / "ckpt.db", background_checkpoint=0.002)
    writer_memory = Memory(ns, store=store)
    writer_memory.set_many({f"user-{i}": {"owner": f"user-{i}"} for i in range(READERS)})
    reader: Any = (
        Memory(ns, store=store)
        if kind == "sync"
        else AsyncMemory(ns, store=ThreadedAsyncStore(store, owned=False))
    )
    stop = threading.Event()
    thread = threading.Thread(target=_write_busy, args=(writer_memory, stop))
    thread.start()
    try:
        for round_ in range(10):
            results = ctx.Queue()
            p = ctx.Process(target=_reader, args=(kind, reader, round_ % READERS, results, 20))
            p.start()
            p.join(30)
            hung = p.is_alive()
            if hung:
                p.kill()
                p.join(5)
            assert not hung, "a child hung on SQLite state inherited from the parent"
            _index, wrong, tb = results.get(timeout=5)
            assert tb is None, tb
            assert wrong == 0
    finally:
        stop.set()
        thread.join(10)
        store.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "ckpt.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
