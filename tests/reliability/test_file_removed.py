"""A database file removed, replaced or made read-only under a running server is detected at
the next write: writes fail with a clear error, ``/readyz`` is 503, and nothing is acknowledged
into a file that no longer exists (issue 14, item 3).

Before: after ``rm botwire.db*`` 20 more writes were answered 200, ``/readyz`` stayed 200, and
after a restart 0 of 40 keys remained.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.server import running_server

import botwire
from botwire import Memory
from botwire._wire import key_path
from botwire.store import SQLiteStore


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _replace(db: Path) -> None:
    other = db.with_name("restored.db")
    SQLiteStore(other).close()  # a valid botwire file, e.g. restored from a backup
    os.replace(other, db)


def _read_only(db: Path) -> None:
    os.chmod(db, 0o400)


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "removed": (_remove, "was removed"),
    "replaced": (_replace, "was replaced"),
    "read-only": (_read_only, "read-only"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_server_refuses_writes_into_a_lost_file(tmp_path: Path, case: str) -> None:
    db = tmp_path / "botwire.db"
    change, words = CASES[case]
    with (
        running_server("--no-access-log", database=db) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        for i in range(20):
            assert http.put(key_path("ns", f"before{i}"), json={"value": i}).status_code == 200
        change(db)
        answers = [http.put(key_path("ns", f"after{i}"), json={"value": i}) for i in range(20)]
        accepted = sum(r.status_code == 200 for r in answers)
        print(f"FIGURE file {case}: {accepted} of 20 writes acknowledged after the change")
        assert accepted == 0
        error = answers[0].json()["error"]
        assert answers[0].status_code == 503 and error["code"] == "unavailable"
        assert words in error["message"] and str(db) in error["message"], error
        assert http.delete(key_path("ns", "before0")).status_code == 503
        ready = http.get("/readyz")
        assert ready.status_code == 503 and words in ready.json()["error"]["message"]
        if case == "read-only":  # made writable again: writes resume, no restart
            os.chmod(db, 0o600)
            assert http.put(key_path("ns", "again"), json={"value": 1}).status_code == 200
            assert http.get("/readyz").status_code == 200
    if case == "read-only":
        conn = sqlite3.connect(db)
        try:
            keys = {k for (k,) in conn.execute("SELECT key FROM bw_entries WHERE ns = 'ns'")}
        finally:
            conn.close()
        assert keys == {f"before{i}" for i in range(20)} | {"again"}


def test_embedded_client_refuses_writes_into_a_removed_file(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory("ns", url=f"sqlite:///{db}") as memory:
        memory.set("a", 1)
        shutil.move(db, tmp_path / "moved.db")
        with pytest.raises(botwire.Unavailable, match="was removed"):
            memory.set("b", 2)
