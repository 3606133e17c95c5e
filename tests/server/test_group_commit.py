"""Group commit on a real ``botwire-server`` over SQLite (issue 22): concurrent writes share one
transaction and one ``COMMIT``, each request answered only after it.

- ``kill -9`` of the server while many writers run, several times: every acknowledged write is
  read back after the restart (an answer before the shared COMMIT would lose some), and the
  file passes ``PRAGMA integrity_check``;
- requests failing inside a group (a stale ``If-Match``, a type mismatch) fail alone: the
  writes grouped with them are stored, with versions unique and increasing per writer;
- both ways of calling the store (``--store-calls inline`` and ``thread``) group writes, which
  ``/metrics`` shows (``botwire_grouped_writes / botwire_write_groups`` > 1).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import RestartableServer
from support.server import running_server

from botwire import Memory
from botwire.store import SQLiteStore

WRITERS = 24


def _metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m is not None, f"{name} missing from /metrics"
    return float(m.group(1))


def _writes_per_commit(port: int) -> float:
    groups = _metric(port, "botwire_write_groups")
    return _metric(port, "botwire_grouped_writes") / groups if groups else 0.0


class Writer(threading.Thread):
    """PUTs of fresh keys and appends of fresh items on one keep-alive connection, until told
    to stop or the server goes away; ``acked`` holds what was answered 200."""

    def __init__(self, port: int, ns: str, wid: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.ns, self.wid, self.stop = port, ns, wid, stop
        self.keys: list[str] = []
        self.items: list[str] = []
        self.versions: list[int] = []
        self.n = 0

    def _send(self, conn: http.client.HTTPConnection, method: str, path: str, body: Any) -> int:
        data = json.dumps(body)
        conn.request(method, path, data, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status == 200:
            self.versions.append(int(json.loads(payload)["version"]))
        return resp.status

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        base = f"/v1/namespaces/{self.ns}/keys"
        try:
            while not self.stop.is_set():
                self.n += 1
                name = f"{self.wid}-{self.n}"
                if self.n % 2:
                    if self._send(conn, "PUT", f"{base}/{name}", {"value": self.n}) == 200:
                        self.keys.append(name)
                elif self._send(conn, "PATCH", f"{base}/log-{self.wid}", {"append": [name]}) == 200:
                    self.items.append(name)
        except (OSError, http.client.HTTPException):
            return  # the server was killed: what was answered before is in keys/items
        finally:
            conn.close()


def _verify(port: int, ns: str, writers: list[Writer]) -> int:
    """How many acknowledged writes are missing."""
    m = Memory(ns, url=f"http://127.0.0.1:{port}", timeout=30, retries=3)
    try:
        lost = 0
        for w in writers:
            got: dict[str, Any] = {}
            for i in range(0, len(w.keys), 500):
                got.update(m.get_many(w.keys[i : i + 500]))
            lost += sum(1 for k in w.keys if k not in got)
            present = set(m.get(f"log-{w.wid}") or [])
            lost += sum(1 for item in w.items if item not in present)
        return lost
    finally:
        m.close()


@pytest.mark.parametrize(
    "kills", [pytest.param(4, id="ci"), pytest.param(12, id="long", marks=pytest.mark.slow)]
)
def test_kill9_under_grouped_writes_loses_no_acknowledged_write(
    kills: int, tmp_path: Path, ns: str
) -> None:
    rng = random.Random(kills)
    db = tmp_path / "group.db"
    acked = per_commit = 0.0
    with RestartableServer(str(db)) as server:
        for kill in range(kills):
            server.start()
            stop = threading.Event()
            writers = [Writer(server.port, ns, f"k{kill}w{i}", stop) for i in range(WRITERS)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.4, 0.9))
            per_commit = max(per_commit, _writes_per_commit(server.port))
            time.sleep(rng.uniform(0.0, 0.2))
            server.kill9()  # mid-storm: groups open, answers in flight
            stop.set()
            for w in writers:
                w.join(timeout=30)
            store = SQLiteStore(str(db))
            try:
                assert store.integrity_check() == "ok"
            finally:
                store.close()
            server.start()
            lost = _verify(server.port, ns, writers)
            count = sum(len(w.keys) + len(w.items) for w in writers)
            acked += count
            assert count > 0, "the writers wrote nothing before the kill"
            assert lost == 0, f"kill {kill + 1}: {lost} of {count} acknowledged writes lost"
            server.kill9()
    print(
        f"FIGURE group-commit kill -9 x{kills}: {acked:.0f} acknowledged writes all present; "
        f"up to {per_commit:.1f} writes per COMMIT"
    )
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"


@pytest.mark.parametrize("calls", ["inline", "thread"])
def test_failing_requests_in_a_group_fail_alone(calls: str, tmp_path: Path, ns: str) -> None:
    with running_server("--store-calls", calls, database=tmp_path / "f.db") as srv:
        m = Memory(ns, url=srv.url)
        m.set("plain", 1)
        m.append("list", 0)
        stop = threading.Event()
        writers = [Writer(srv.port, ns, f"w{i}", stop) for i in range(WRITERS)]
        failures: list[int] = []

        def spoil() -> None:  # requests that fail inside the groups
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            try:
                while not stop.is_set():
                    for method, path, body, headers in (
                        ("PUT", "plain", {"value": 2}, {"If-Match": '"999999"'}),
                        ("PATCH", "plain", {"append": [1]}, {}),  # not a list
                        ("PATCH", "list", {"incr": 1}, {}),  # a list: no incr
                    ):
                        conn.request(
                            method,
                            f"/v1/namespaces/{ns}/keys/{path}",
                            json.dumps(body),
                            {"Content-Type": "application/json", **headers},
                        )
                        resp = conn.getresponse()
                        resp.read()
                        failures.append(resp.status)
            finally:
                conn.close()

        spoilers = [threading.Thread(target=spoil, daemon=True) for _ in range(4)]
        for t in [*writers, *spoilers]:
            t.start()
        time.sleep(1.5)
        per_commit = _writes_per_commit(srv.port)
        stop.set()
        for t in [*writers, *spoilers]:
            t.join(timeout=30)
        assert failures and all(400 <= s < 500 for s in failures), sorted(set(failures))
        assert _verify(srv.port, ns, writers) == 0
        assert m.get("plain") == 1 and m.get("list") == [0]
        for w in writers:  # each writer's answers: versions unique and growing
            assert w.versions == sorted(set(w.versions)), w.wid
        everything = [v for w in writers for v in w.versions]
        assert len(set(everything)) == len(everything)
        m.close()
    print(
        f"FIGURE group-commit {calls}: {per_commit:.1f} writes per COMMIT, "
        f"{len(failures)} failing requests alongside"
    )
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"
