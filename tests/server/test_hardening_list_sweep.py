"""Issue 13 item 5, trims and deletes of long lists in bounded chunks (SQLite): a trim or delete
of more than ``DEFER_ROWS`` list rows is applied at once logically (the entry's head moves, or
the entry goes; reads skip the rows below it) and the rows are removed afterwards by
``sweep()``, ``SWEEP_ROWS`` per transaction, so another writer waits for one chunk at most.
What a client sees must not change: answers, reads, ``tail=``, usage bytes, a list recreated
over leftovers, leftovers of a crash swept at the next start. Checked on the store itself and
through real servers on SQLite and PostgreSQL (which deletes at once: the same answers)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.probe import BACKENDS, serving

from botwire import InvalidArgument
from botwire._wire import key_path
from botwire.store import Op, SQLiteStore
from botwire.store._sqlite import DEFER_ROWS, SWEEP_ROWS

JSON = {"Content-Type": "application/json"}
N = DEFER_ROWS + 1500  # long enough to be deferred


def _rows(path: Path, ns: str, key: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM bw_items WHERE ns = ? AND key = ?", (ns, key)
            ).fetchone()[0]
        )


def _fill(store: SQLiteStore, ns: str, key: str, n: int) -> None:
    for start in range(0, n, 1000):
        store.batch(
            ns, [Op("append", key, items=[f'"i{i}"' for i in range(start, min(n, start + 1000))])]
        )


def test_long_trim_is_logical_then_swept_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, auto_sweep=False)
    try:
        _fill(store, "a", "h", N)
        before = store.usage("a").bytes
        # a long read is joined by SQLite itself: the same text, in order; tail counts
        joined = store.get_json("a", "h")[0]  # type: ignore[index]
        assert joined == "[" + ",".join(f'"i{i}"' for i in range(N)) + "]"
        assert store.get_json("a", "h", tail=N - 10)[0] == (  # type: ignore[index]
            "[" + ",".join(f'"i{i}"' for i in range(10, N)) + "]"
        )
        with pytest.raises(InvalidArgument):
            store.get_json("a", "h", tail=-1)
        out = store.batch("a", [Op("append", "h", items=['"last"', '"end"'], max_len=3)])
        assert out[0]["length"] == 3
        assert store.get("a", "h").value == [f"i{N - 1}", "last", "end"]  # type: ignore[union-attr]
        assert store.get("a", "h", tail=2).value == ["last", "end"]  # type: ignore[union-attr]
        assert store.get_json("a", "h")[0] == f'["i{N - 1}","last","end"]'  # type: ignore[index]
        # exact bytes at once: the key, brackets, commas and the three items
        assert store.usage("a").bytes == len("h") + 2 + 2 + len(f'"i{N - 1}"') + 6 + 5 < before
        assert store.needs_sweep and _rows(path, "a", "h") == N + 2  # nothing deleted yet
        removed = store.sweep(max_chunks=1)
        assert removed == SWEEP_ROWS and _rows(path, "a", "h") == N + 2 - SWEEP_ROWS
        store.sweep()
        assert _rows(path, "a", "h") == 3 and not store.needs_sweep
        assert store.get("a", "h").value == [f"i{N - 1}", "last", "end"]  # type: ignore[union-attr]
    finally:
        store.close()


def test_deleted_long_list_recreated_over_its_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    store = SQLiteStore(path, auto_sweep=False)
    try:
        _fill(store, "a", "h", N)
        assert store.batch("a", [Op("delete", "h")]) == [{"deleted": True}]
        assert store.get("a", "h") is None and store.usage("a").bytes == 0
        # a new list under the same key, before any sweep: none of the old items show
        store.batch("a", [Op("append", "h", items=['"new"'])])
        assert store.get("a", "h").value == ["new"]  # type: ignore[union-attr]
        assert store.get("a", "h", tail=5).value == ["new"]  # type: ignore[union-attr]
        assert store.batch("a", [Op("pop", "h")])[0]["value"] == "new"
        assert store.get("a", "h").value == []  # type: ignore[union-attr]
        # a JSON array set over it, then appended to (converted to rows above the leftovers)
        store.batch("a", [Op("set", "h", value="[1,2]"), Op("append", "h", items=["3"])])
        assert store.get("a", "h").value == [1, 2, 3]  # type: ignore[union-attr]
        _fill(store, "a", "g", N)
        assert store.clear("a") == 2  # the namespace's long list goes the same way
        assert store.get("a", "g") is None and store.usage("a").bytes == 0
    finally:
        store.close()
    # a crash before the sweep: the next store sweeps the leftovers with its first write
    store = SQLiteStore(path)
    try:
        assert store.needs_sweep
        store.batch("b", [Op("set", "x", value="1")])
        assert not store.needs_sweep
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM bw_items").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM bw_trash").fetchone()[0] == 0
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_long_list_trim_delete_recreate(backend: str, tmp_path: Path) -> None:
    ns, key = "lists", "long"
    url = key_path(ns, key)
    with (
        serving(backend, tmp_path, "--no-access-log") as server,
        httpx.Client(base_url=server.url, timeout=60, headers=JSON) as http,
    ):
        for start in range(0, N, 1000):
            items = [f"i{i}" for i in range(start, min(N, start + 1000))]
            assert http.patch(url, json={"append": items}).status_code == 200
        r = http.patch(url, json={"append": ["z"], "max_len": 2})
        assert r.status_code == 200 and r.json()["length"] == 2
        assert http.get(url).json()["value"] == [f"i{N - 1}", "z"]
        assert http.get(url, params={"tail": 1}).json()["value"] == ["z"]
        used = http.get(f"/v1/namespaces/{ns}").json()["bytes"]
        assert used == len(key) + 2 + 1 + len(f'"i{N - 1}"') + 3
        assert http.delete(url).json() == {"deleted": True}
        assert http.patch(url, json={"append": ["again"]}).status_code == 200
        assert http.get(url).json()["value"] == ["again"]
        assert http.get(f"/v1/namespaces/{ns}").json()["bytes"] == len(key) + 2 + 7
        if backend == "sqlite":  # the server sweeps in the background: the rows go
            database = Path(server.proc.args[server.proc.args.index("--database") + 1])  # type: ignore[arg-type]
            deadline = time.monotonic() + 30
            while _rows(database, ns, key) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _rows(database, ns, key) == 1


def _child(path: str, queue: Any) -> None:
    store = _shared[0]
    try:
        store.batch("f", [Op("set", "child", value='"c"')])
        queue.put((store.get("f", "parent").value, store.get_json("f", "child")[0]))  # type: ignore[union-attr,index]
    except BaseException as exc:  # reported to the parent
        queue.put(repr(exc))


_shared: list[SQLiteStore] = []


def test_read_connections_survive_fork_while_another_thread_reads(tmp_path: Path) -> None:
    """The per-thread read connections are the parent's: a forked child (gunicorn
    ``--preload``, multiprocessing) opens its own, even while a parent thread is mid-read."""
    import multiprocessing
    import threading

    path = tmp_path / "f.db"
    store = SQLiteStore(path)
    _shared[:] = [store]
    stop = threading.Event()
    try:
        store.batch("f", [Op("set", "parent", value='"p"')])
        _fill(store, "f", "long", 3000)

        def reader() -> None:
            while not stop.is_set():
                assert store.get_json("f", "long") is not None

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        ctx = multiprocessing.get_context("fork")
        for _ in range(3):
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(str(path), queue))
            proc.start()
            got = queue.get(timeout=30)
            proc.join(30)
            assert got == ("p", '"c"'), got
        stop.set()
        thread.join(10)
        assert store.get("f", "child").value == "c"  # type: ignore[union-attr]
    finally:
        stop.set()
        _shared.clear()
        store.close()
