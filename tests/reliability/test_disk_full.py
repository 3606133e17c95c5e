"""A full disk is named, loses nothing, still lets users delete, and heals without a restart
(issue 14, item 2). SQLite on a real 3 MB tmpfs (``support.tmpfs``).

Before: every write got ``503 "store failed (OperationalError)"``, which the client retried and
reported as ``Unavailable``; ``/readyz`` stayed 200; deletes and ``usage`` were refused too; in
one run writes failed even after space was freed, until a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import ServerProcess, running_server
from support.tmpfs import small_tmpfs

import botwire
from botwire import AsyncMemory, Memory
from botwire._wire import key_path
from botwire.store import Op, SQLiteStore

VALUE = "v" * 2000


@pytest.fixture
def disk() -> Iterator[Path]:
    with small_tmpfs("3m") as path:
        yield path


def _fill(http: httpx.Client, ns: str, acked: dict[str, str]) -> httpx.Response:
    """PUT values until the disk is full; returns the refusal."""
    for i in range(100_000):
        key = f"k{i}"
        r = http.put(key_path(ns, key), json={"value": f"{i}:{VALUE}"})
        if r.status_code != 200:
            return r
        acked[key] = f"{i}:{VALUE}"
    raise AssertionError("a 3 MB disk never filled up")


def _refusals(server: ServerProcess) -> int:
    """How many requests the server answered 507 (its access log)."""
    return sum(
        1
        for line in server.log().splitlines()
        if line.startswith("{") and json.loads(line).get("status") == 507
    )


def _refusals_after(server: ServerProcess, expected: int) -> int:
    """The 507 count once ``expected`` is reached (or 10 s passed): log lines follow responses."""
    deadline = time.monotonic() + 10
    while _refusals(server) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # and no extra refusal (a client retry) trails behind
    return _refusals(server)


def test_full_disk_on_a_live_server(disk: Path) -> None:
    db = disk / "b.db"
    filler = disk / "other-files"
    filler.write_bytes(b"\0" * 600_000)  # someone else's files on the same disk
    acked: dict[str, str] = {}
    other: dict[str, str] = {}
    with (
        running_server(database=db) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        for i in range(20):
            assert http.put(key_path("other", f"o{i}"), json={"value": VALUE}).status_code == 200
            other[f"o{i}"] = VALUE
        refusal = _fill(http, "main", acked)
        assert refusal.status_code == 507, refusal.text
        error = refusal.json()["error"]
        assert error["code"] == "storage_full"
        assert "disk" in error["message"] and "full" in error["message"]
        assert "Delete keys" in error["message"] and "no restart" in error["message"]
        assert error["namespace"] == "main" and "'main'" in error["message"]
        print(
            f"FIGURE disk full: {len(acked)} writes of 2 kB acknowledged on a 3 MB tmpfs "
            "before 507 storage_full"
        )

        # The Python client raises StorageFull at once: one request, no retry.
        before = _refusals_after(server, 1)  # _fill's own 507 (log lines follow responses)
        with (
            Memory("main", url=server.url, retries=3) as memory,
            pytest.raises(botwire.StorageFull) as caught,
        ):
            memory.set("probe-507", VALUE)
        assert "full" in str(caught.value)
        assert _refusals_after(server, before + 1) == before + 1

        async def async_set() -> None:
            async with AsyncMemory("main", url=server.url, retries=3) as amemory:
                await amemory.set("probe-507-async", VALUE)

        with pytest.raises(botwire.StorageFull):
            asyncio.run(async_set())
        # The async client (httpx) does not retry either.
        assert _refusals_after(server, before + 2) == before + 2

        # /metrics counts it, for alerts.
        metrics = http.get("/metrics").text
        assert 'botwire_store_errors_total{error="StorageFull"}' in metrics

        # /readyz says so.
        ready = http.get("/readyz")
        assert ready.status_code == 507 and ready.json()["error"]["code"] == "storage_full"

        # Reads, usage, deletes and clear keep working on the full disk.
        assert http.get(key_path("main", "k0")).json()["value"] == acked["k0"]
        assert http.get("/v1/namespaces/main").status_code == 200
        deleted = 0
        for key in list(acked)[:60]:  # 120 kB: room inside the file again
            r = http.delete(key_path("main", key))
            assert r.status_code == 200 and r.json()["deleted"] is True, r.text
            del acked[key]
            deleted += 1
        cleared = http.delete("/v1/namespaces/other")
        assert cleared.status_code == 200 and cleared.json()["deleted"] == 20, cleared.text
        print(
            f"FIGURE disk full: {deleted} deletes and a clear of 20 keys answered 200 "
            "while the disk was full"
        )

        # Space freed inside the file by those deletes: writes resume, no restart.
        resumed = http.put(key_path("main", "after-delete"), json={"value": "small"})
        assert resumed.status_code == 200, resumed.text
        acked["after-delete"] = "small"

        # Fill again, then free the disk itself (remove another file): writes resume.
        refusal = _fill(http, "main2", acked2 := {})
        assert refusal.status_code == 507
        filler.unlink()
        resumed = http.put(key_path("main", "after-free"), json={"value": VALUE})
        assert resumed.status_code == 200, resumed.text
        acked["after-free"] = VALUE
        assert http.get("/readyz").status_code == 200
    # Nothing acknowledged is lost, and the file is sound.
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(conn.execute("SELECT key, value FROM bw_entries WHERE ns = 'main'"))
        rows2 = dict(conn.execute("SELECT key, value FROM bw_entries WHERE ns = 'main2'"))
        assert conn.execute("SELECT count(*) FROM bw_entries WHERE ns = 'other'").fetchone()[0] == 0
    finally:
        conn.close()
    assert {k: json.loads(v) for k, v in rows.items()} == acked
    assert {k: json.loads(v) for k, v in rows2.items()} == acked2


def test_embedded_store_raises_storage_full(disk: Path) -> None:
    store = SQLiteStore(disk / "e.db")
    try:
        for i in range(100_000):
            try:
                store.batch("ns", [Op("set", f"k{i}", value=json.dumps(VALUE))])
            except botwire.StorageFull as exc:
                caught = exc
                break
        else:
            raise AssertionError("a 3 MB disk never filled up")
        assert "full" in str(caught) and str(disk / "e.db") in str(caught)
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert not os.path.exists(str(disk / "e.db.reserve"))  # the embedded store keeps none


def test_io_error_on_a_full_disk_is_a_clean_storage_full(disk: Path) -> None:
    """SQLite can report ENOSPC as SQLITE_IOERR (WAL index, mmap): the guard then answers
    StorageFull. It used to pass the sqlite3 exception as the namespace (found by mypy), so
    the message read "(writing namespace OperationalError(...))" and the server's JSON body
    could not be encoded. The disk is really full; SQLite's IOERR cannot be provoked on
    demand, so the exception is the one sqlite3 raises for it, built here."""
    from botwire.store._guard import SQLITE_IOERR, FileGuard

    path = disk / "io.db"
    sqlite3.connect(path).close()
    guard = FileGuard(str(path), reserve=False)
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # unbuffered: ENOSPC shows here
    try:
        for _ in range(10_000):  # fill the 3 MB disk to the last block
            os.write(fd, b"x" * 4096)
        raise AssertionError("a 3 MB disk never filled up")
    except OSError:
        pass
    finally:
        os.close(fd)
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = SQLITE_IOERR
    error = guard.failure(exc)
    assert isinstance(error, botwire.StorageFull), error
    assert error.namespace is None and error.key is None
    assert "writing namespace" not in str(error) and "full" in str(error)
    assert json.loads(json.dumps(error.to_payload()))["error"]["code"] == "storage_full"
