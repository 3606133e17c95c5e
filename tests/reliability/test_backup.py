"""``botwire-server backup`` takes a consistent online copy of a SQLite store while it serves
writes, and the copy restores (issue 14, item 6).

A write storm runs against a real server; the backup runs as the real CLI in the middle of it.
The restored copy must hold every write acknowledged before the backup started, and, being a
snapshot, a prefix of each writer's sequential writes (no holes), and pass ``integrity_check``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from support.server import running_server

from botwire._wire import key_path

WRITERS = 4


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    return subprocess.run(
        [sys.executable, "-m", "botwire_server", "backup", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_backup_under_a_write_storm_restores_every_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    out = tmp_path / "backups" / "copy.db"
    out.parent.mkdir()
    acked: list[list[int]] = [[] for _ in range(WRITERS)]
    stop = threading.Event()
    errors: list[BaseException] = []
    with running_server("--no-access-log", database=db) as server:
        # Some bulk first, so the copy takes several steps.
        with httpx.Client(base_url=server.url) as http:
            for i in range(200):
                r = http.put(key_path("bulk", f"b{i}"), json={"value": "x" * 4000})
                assert r.status_code == 200

        def storm(w: int) -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=30) as c:
                    i = 0
                    while not stop.is_set():
                        r = c.put(key_path("storm", f"w{w}-{i:06d}"), json={"value": i})
                        assert r.status_code == 200, r.text
                        acked[w].append(i)
                        i += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=storm, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            before = [len(a) for a in acked]  # acknowledged before the backup started
            started = time.perf_counter()
            result = _cli("--database", str(db), "--pages", "16", str(out))
            took = time.perf_counter() - started
            during = sum(len(a) for a in acked) - sum(before)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors
        assert result.returncode == 0, result.stderr
        assert "holds every write acknowledged before" in result.stdout
    print(
        f"FIGURE backup under a write storm: {took:.2f} s (CLI process included), "
        f"{during} writes acknowledged by the server while it ran, "
        f"{sum(before)} acknowledged before it started"
    )
    assert during > 0  # the server kept serving writes during the backup
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert not (out.parent / "copy.db.partial").exists()

    # Restore: a fresh server on the copy.
    restored = tmp_path / "restored" / "botwire.db"
    restored.parent.mkdir()
    restored.write_bytes(out.read_bytes())
    conn = sqlite3.connect(restored)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with (
        running_server("--no-access-log", database=restored) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert http.get(key_path("bulk", "b199")).json()["value"] == "x" * 4000
        keys: list[str] = []
        cursor = None
        while True:
            params = {"prefix": "w", "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/namespaces/storm/keys", params=params).json()
            keys += [k["key"] for k in page["keys"]]
            cursor = page["cursor"]
            if not cursor:
                break
        for w in range(WRITERS):
            mine = sorted(int(k.split("-")[1]) for k in keys if k.startswith(f"w{w}-"))
            assert len(mine) >= before[w], f"writer {w}: {len(mine)} < {before[w]} acked"
            assert mine == list(range(len(mine))), f"writer {w}: not a prefix (a hole)"
            last = http.get(key_path("storm", f"w{w}-{before[w] - 1:06d}"))
            assert last.status_code == 200 and last.json()["value"] == before[w] - 1


def test_backup_refuses_what_it_cannot_do_safely(tmp_path: Path) -> None:
    missing = _cli("--database", str(tmp_path / "nope.db"), str(tmp_path / "out.db"))
    assert missing.returncode == 1 and "no SQLite store" in missing.stderr
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "out.db").exists()
    pg = _cli("--database", "postgresql://u@127.0.0.1:9/x", str(tmp_path / "out.db"))
    assert pg.returncode == 2 and "pg_dump" in pg.stderr
    db = tmp_path / "s.db"
    from botwire.store import SQLiteStore

    SQLiteStore(db).close()
    (tmp_path / "exists.db").write_bytes(b"keep me")
    exists = _cli("--database", str(db), str(tmp_path / "exists.db"))
    assert exists.returncode == 2 and "--force" in exists.stderr
    assert (tmp_path / "exists.db").read_bytes() == b"keep me"
    assert _cli("--database", str(db), "--force", str(tmp_path / "exists.db")).returncode == 0


def test_backup_copies_the_file_named_whatever_its_path_holds(tmp_path: Path) -> None:
    """``%41`` and ``#`` are characters of a path, not URI syntax: the backup opened
    ``tenant%41.db`` as ``tenantA.db`` (another store's data in the copy), and cut
    ``a#b/bw.db`` at ``#``, creating an empty file ``a``."""
    from botwire import Memory

    for name, decoy in (("tenant%41.db", "tenantA.db"), ("a#b/bw.db", "a")):
        source = tmp_path / name
        source.parent.mkdir(exist_ok=True)
        with Memory("ns", url=f"sqlite:///{source}") as m:
            m.set("who", name)
        if decoy.endswith(".db"):
            with Memory("ns", url=f"sqlite:///{tmp_path / decoy}") as m:
                m.set("who", "DECOY")
        out = tmp_path / f"out-{len(decoy)}.db"
        done = _cli("--database", str(source), str(out))
        assert done.returncode == 0, done.stderr
        with Memory("ns", url=f"sqlite:///{out}") as m:
            assert m.get("who") == name
        if not decoy.endswith(".db"):
            assert not (tmp_path / decoy).exists()  # nothing created beside the source
