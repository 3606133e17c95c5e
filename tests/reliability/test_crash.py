"""``kill -9`` of the server in the middle of a write storm, over and over, on SQLite and on
PostgreSQL; ``kill -9`` of PostgreSQL itself under a running server; and ``kill -9`` of one of
several client processes sharing an embedded SQLite file.

Clients record each acknowledged write (a call that returned) in an ack file. After every
restart, every write acknowledged before the kill is read back; nothing acknowledged is rolled
back (a counter never goes below a value an ``incr`` returned); the SQLite file passes
``PRAGMA integrity_check``. At the end no appended item is present twice and no counter exceeds
the number of ``incr`` calls made (a retry applied twice would)."""

from __future__ import annotations

import json
import random
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import (
    Figures,
    RestartableServer,
    kill_group,
    read_acks,
    scale,
    spawn_worker,
    wait_all,
    workers,
)
from support.postgres import PostgresServer, PostgresUnavailable

from botwire import Memory
from botwire.store import SQLiteStore

WRITERS = 3
#: The 100-restart variants: ~5 minutes on PostgreSQL on a 2-core machine, the suite's default
#: timeout (300 s) is not theirs.
LONG = (pytest.mark.slow, pytest.mark.timeout(1200))


class Ledger:
    """The acknowledged writes of every worker, read from the ack files."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def snapshot(self) -> dict[str, Any]:
        appended: list[str] = []
        counters: dict[str, int] = {}
        incr_calls: Counter[str] = Counter()
        incr_acked = 0
        sets: list[str] = []
        failed = 0
        for path in self.paths:
            for line in read_acks(path):
                if line[0] == "a":
                    appended.append(line[1])
                elif line[0] == "i":
                    value = int(line[2])
                    assert value > counters.get(line[1], 0), "incr went backwards"
                    counters[line[1]] = value
                    incr_calls[line[1]] += 1
                    incr_acked += 1
                elif line[0] == "s":
                    sets.append(line[1])
                elif line[0] == "x":
                    failed += 1
                    if line[1] == "i":
                        incr_calls[line[2]] += 1
        return {
            "appended": appended,
            "counters": counters,
            "incr_calls": incr_calls,
            "incr_acked": incr_acked,
            "sets": sets,
            "failed": failed,
        }


def _verify(url: str, ns: str, acked: dict[str, Any]) -> int:
    """Every acknowledged write is present; returns how many were lost (asserted 0 by callers)."""
    m = Memory(ns, url=url, timeout=10, retries=3)
    try:
        log = m.get("log") or []
        present = set(log)
        lost = sum(1 for item in acked["appended"] if item not in present)
        for wid, value in acked["counters"].items():
            if (m.get(f"c-{wid}") or 0) < value:
                lost += 1
        sets = acked["sets"]
        got: dict[str, Any] = {}
        for i in range(0, len(sets), 500):  # a batch holds at most 1000 ops
            got.update(m.get_many(sets[i : i + 500]))
        lost += sum(1 for k in sets if k not in got)
        return lost
    finally:
        m.close()


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    """Until the server's ``/readyz`` answers 200 (its store reachable again)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # 503 (HTTPError is an OSError) or not answering yet
            pass
        assert time.monotonic() < deadline, f"{url} not ready {timeout} s after the restart"
        time.sleep(0.05)


def _assert_unavailable_while_down(url: str, ns: str) -> None:
    """With its database gone the server answers 503 ``unavailable`` well within a client's
    per-attempt timeout (10 s by default), so the client sees why instead of timing out."""
    started = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/v1/namespaces/{ns}/keys/log", timeout=60)
    waited = time.monotonic() - started
    assert refused.value.code == 503, refused.value.code
    assert json.loads(refused.value.read())["error"]["code"] == "unavailable"
    assert waited < 8, f"the server took {waited:.1f} s to give up"


def _assert_storming(procs: list[subprocess.Popen[bytes]]) -> None:
    """Every writer still runs: one that left before the stop file would leave the crashes
    after it nothing to lose. Seen once: read-backs that scanned every list item (fixed) took
    minutes while the storm went on; the three writers stopped near round 33,300 each, the
    list's 100,000-item cap, and the test ran into its timeout instead of saying so."""
    for p in procs:
        if p.poll() is not None:
            out = p.stdout.read().decode(errors="replace") if p.stdout is not None else ""
            raise AssertionError(f"a writer left the storm early ({p.returncode}):\n{out}")


def _storm(
    database: str,
    backend: str,
    restarts: int,
    tmp_path: Path,
    ns: str,
    record_property: Any,
    sqlite_path: Path | None,
    postgres: PostgresServer | None = None,
) -> None:
    """``restarts`` times: let the write storm run, ``kill -9`` the botwire server (or, given
    ``postgres``, the PostgreSQL cluster under a server that keeps running), restart it and
    read back every write acknowledged before the kill."""
    rng = random.Random(restarts * 7919 + len(backend))
    acks = [tmp_path / f"acks-{i}" for i in range(WRITERS)]
    stop = tmp_path / "stop"
    ledger = Ledger(acks)
    lost_total = checked = 0
    integrity: list[str] = []
    with RestartableServer(database) as server:
        server.start()
        specs = [
            {
                "wid": f"w{i}",
                "url": server.url,
                "ns": ns,
                "mode": "storm",
                "count": 1_000_000,
                "acks": str(acks[i]),
                "stop_file": str(stop),
                "timeout": 2.0,
                "retries": 6,
            }
            for i in range(WRITERS)
        ]
        with workers(specs) as procs:
            for crash in range(1, restarts + 1):
                # let the storm run for a random moment, then pull the plug
                time.sleep(rng.uniform(0.05, 0.4))
                _assert_storming(procs)
                if postgres is not None:
                    postgres.kill9()
                    acked = ledger.snapshot()  # everything acknowledged before the crash
                    if crash == 1:
                        _assert_unavailable_while_down(server.url, ns)
                    postgres.restart()  # crash recovery; the botwire server never stopped
                    _wait_ready(server.url)
                    assert server.proc is not None and server.proc.poll() is None
                    lost = _verify(server.url, ns, acked)
                    lost_total += lost
                    checked += len(acked["appended"]) + len(acked["counters"]) + len(acked["sets"])
                    assert lost == 0, f"PostgreSQL crash {crash}: {lost} acknowledged writes lost"
                    continue
                server.kill9()
                acked = ledger.snapshot()  # everything acknowledged by the killed server
                if sqlite_path is not None:
                    store = SQLiteStore(str(sqlite_path))
                    try:
                        integrity.append(store.integrity_check())
                    finally:
                        store.close()
                server.start()
                lost = _verify(server.url, ns, acked)
                lost_total += lost
                checked += len(acked["appended"]) + len(acked["counters"]) + len(acked["sets"])
                assert lost == 0, f"restart {server.starts - 1}: {lost} acknowledged writes lost"
            stop.touch()
            wait_all(procs, timeout=120)
        final = ledger.snapshot()
        m = Memory(ns, url=server.url)
        log = m.get("log") or []
        duplicated = sum(n - 1 for n in Counter(log).values() if n > 1)
        over = {
            w: m.get(f"c-{w}")
            for w in final["incr_calls"]
            if (m.get(f"c-{w}") or 0) > final["incr_calls"][w]
        }
        lost_total += _verify(server.url, ns, final)
        m.close()
    acknowledged = len(final["appended"]) + final["incr_acked"] + len(final["sets"])
    attempted = acknowledged + final["failed"]  # + the calls cut short by a kill, unrecorded
    victim = "postgresql" if postgres is not None else "server"
    fig = Figures(
        f"crash/{victim}-kill9/{backend}",
        attempted=attempted,
        acknowledged=acknowledged,
        faults={f"kill -9 {victim}": restarts},
        lost=lost_total,
        duplicated=duplicated + len(over),
        extra={
            "failed_calls_unavailable": final["failed"],
            "acked_appends": len(final["appended"]),
            "acked_sets": len(final["sets"]),
            "incr_calls": sum(final["incr_calls"].values()),
            "acked_incrs": final["incr_acked"],
            "integrity_checks": len(integrity),
            "integrity_not_ok": sum(1 for r in integrity if r != "ok"),
            "list_length": len(log),
            "acked_writes_verified": checked,
        },
    )
    fig.record(record_property)
    assert lost_total == 0 and duplicated == 0 and not over, over
    assert all(r == "ok" for r in integrity), integrity
    assert len(final["appended"]) > restarts  # the storm really wrote between kills


@pytest.mark.parametrize(
    "restarts", [pytest.param(20, id="ci"), pytest.param(100, id="long", marks=LONG)]
)
def test_server_kill9_sqlite(restarts: int, tmp_path: Path, ns: str, record_property: Any) -> None:
    db = tmp_path / "srv.db"
    _storm(str(db), "sqlite", restarts, tmp_path, ns, record_property, db)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "restarts", [pytest.param(20, id="ci"), pytest.param(100, id="long", marks=LONG)]
)
def test_server_kill9_postgres(
    restarts: int, tmp_path: Path, ns: str, pg_dsn: str, record_property: Any
) -> None:
    _storm(pg_dsn, "postgres", restarts, tmp_path, ns, record_property, None)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "crashes", [pytest.param(6, id="ci"), pytest.param(30, id="long", marks=pytest.mark.slow)]
)
def test_postgresql_kill9_under_a_running_server(
    crashes: int, tmp_path: Path, ns: str, record_property: Any
) -> None:
    """The database itself crashes (postmaster and backends ``kill -9``) under a write storm,
    over and over, on a private cluster with production's ``synchronous_commit=on``. The botwire
    server keeps running: while PostgreSQL is down calls fail with ``Unavailable`` (never a
    500 or a hang), it reconnects by itself once the cluster is back, and nothing it
    acknowledged is lost or applied twice."""
    try:
        cluster = PostgresServer.start_private(durable=True)
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    try:
        _storm(
            cluster.new_database("botwire_pgcrash"),
            "postgres",
            crashes,
            tmp_path,
            ns,
            record_property,
            None,
            postgres=cluster,
        )
    finally:
        cluster.stop()


@pytest.mark.parametrize(
    "kills", [pytest.param(3, id="ci"), pytest.param(15, id="long", marks=pytest.mark.slow)]
)
def test_client_kill9_on_a_shared_sqlite_file(
    kills: int, tmp_path: Path, ns: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    """Several embedded clients share one file; one is killed mid-storm, ``kills`` times over.
    The others finish, the file stays sound, the killed ones' acknowledged writes remain."""
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    stop = tmp_path / "stop"
    rng = random.Random(kills)
    survivors = 2
    per_survivor = scale(150, 600, request)
    acks = [tmp_path / f"acks-s{i}" for i in range(survivors)]
    specs = [
        {
            "wid": f"s{i}",
            "url": url,
            "ns": ns,
            "mode": "storm",
            "count": per_survivor,
            "acks": str(acks[i]),
            "stop_file": str(stop),
        }
        for i in range(survivors)
    ]
    victims: list[Path] = []
    with workers(specs) as procs:
        for k in range(kills):
            path = tmp_path / f"acks-v{k}"
            victims.append(path)
            victim = spawn_worker(
                {
                    "wid": f"v{k}",
                    "url": url,
                    "ns": ns,
                    "mode": "storm",
                    "count": 1_000_000,
                    "acks": str(path),
                    "stop_file": str(stop),
                }
            )
            try:
                deadline = time.monotonic() + 30
                while len(read_acks(path)) < 5 and time.monotonic() < deadline:
                    time.sleep(0.01)  # polling the victim's own progress, not a guess
                time.sleep(rng.uniform(0.0, 0.3))
            finally:
                kill_group(victim)
                if victim.stdout is not None:
                    victim.stdout.close()
        wait_all(procs, timeout=180)
    ledger = Ledger(acks + victims)
    acked = ledger.snapshot()
    store = SQLiteStore(str(db))
    try:
        integrity = store.integrity_check()
    finally:
        store.close()
    lost = _verify(url, ns, acked)
    log = Memory(ns, url=url).get("log") or []
    duplicated = sum(n - 1 for n in Counter(log).values() if n > 1)
    survivor_items = [x for x in log if x.startswith("s")]
    acknowledged = len(acked["appended"]) + acked["incr_acked"] + len(acked["sets"])
    fig = Figures(
        "crash/client-kill9/embedded",
        attempted=acknowledged,
        acknowledged=acknowledged,
        faults={"kill -9 client": kills},
        lost=lost,
        duplicated=duplicated,
        extra={"integrity": integrity, "survivor_appends": len(survivor_items)},
    )
    fig.record(record_property)
    assert integrity == "ok"
    assert lost == 0 and duplicated == 0
    assert len(survivor_items) == survivors * per_survivor  # the others carried on, all applied
