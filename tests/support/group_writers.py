"""Writers for the group-commit tests on a real ``botwire-server`` (SQLite and PostgreSQL):
keep-alive writers that remember what was acknowledged, the check that every acknowledged
write is there after a ``kill -9``, and the grouping read from ``/metrics``."""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from botwire import Memory

__all__ = [
    "Spoiler",
    "Writer",
    "failing_requests_fail_alone",
    "kill9_rounds",
    "metric",
    "namespaces_per_shared_transaction",
    "verify_acked",
    "writes_per_commit",
]


def metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m is not None, f"{name} missing from /metrics"
    return float(m.group(1))


def namespaces_per_shared_transaction(port: int) -> float:
    """PostgreSQL: the mean namespaces of the transactions that ran several namespaces' groups
    (0: none ran)."""
    shared = metric(port, "botwire_shared_write_transactions")
    return metric(port, "botwire_shared_write_namespaces") / shared if shared else 0.0


def writes_per_commit(port: int) -> float:
    groups = metric(port, "botwire_write_groups")
    return metric(port, "botwire_grouped_writes") / groups if groups else 0.0


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


def verify_acked(port: int, ns: str, writers: list[Writer]) -> int:
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


class Spoiler(threading.Thread):
    """Requests that fail inside the groups, until told to stop: a stale ``If-Match``, an
    append to a number (key ``plain``), an incr of a list (key ``list``); each answer's status
    goes to ``failures``."""

    def __init__(self, port: int, ns: str, stop: threading.Event, failures: list[int]) -> None:
        super().__init__(daemon=True)
        self.port, self.ns, self.stop, self.failures = port, ns, stop, failures

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self.stop.is_set():
                for method, path, body, headers in (
                    ("PUT", "plain", {"value": 2}, {"If-Match": '"999999"'}),
                    ("PATCH", "plain", {"append": [1]}, {}),  # not a list
                    ("PATCH", "list", {"incr": 1}, {}),  # a list: no incr
                ):
                    conn.request(
                        method,
                        f"/v1/namespaces/{self.ns}/keys/{path}",
                        json.dumps(body),
                        {"Content-Type": "application/json", **headers},
                    )
                    resp = conn.getresponse()
                    resp.read()
                    self.failures.append(resp.status)
        finally:
            conn.close()


def failing_requests_fail_alone(url: str, port: int, ns: str, writers: int = 24) -> float:
    """Run ``writers`` writers beside 4 :class:`Spoiler` threads for 1.5 s on a running server;
    check that every spoiler request failed with a 4xx, every acknowledged write is there, the
    spoiled keys kept their values, and versions are unique and growing per writer. Returns the
    writes per grouped COMMIT seen meanwhile."""
    m = Memory(ns, url=url)
    try:
        m.set("plain", 1)
        m.append("list", 0)
        stop = threading.Event()
        team = [Writer(port, ns, f"w{i}", stop) for i in range(writers)]
        failures: list[int] = []
        spoilers = [Spoiler(port, ns, stop, failures) for _ in range(4)]
        for t in [*team, *spoilers]:
            t.start()
        time.sleep(1.5)
        per_commit = writes_per_commit(port)
        stop.set()
        for t in [*team, *spoilers]:
            t.join(timeout=30)
        assert failures and all(400 <= s < 500 for s in failures), sorted(set(failures))
        assert verify_acked(port, ns, team) == 0
        assert m.get("plain") == 1 and m.get("list") == [0]
        for w in team:  # each writer's answers: versions unique and growing
            assert w.versions == sorted(set(w.versions)), w.wid
        everything = [v for w in team for v in w.versions]
        assert len(set(everything)) == len(everything)
        print(f"FIGURE {len(failures)} failing requests alongside the grouped writes")
        return per_commit
    finally:
        m.close()


def kill9_rounds(
    server: Any,
    ns: str | Sequence[str],
    kills: int,
    writers: int = 24,
    after_kill: Callable[[], None] | None = None,
    shared: list[float] | None = None,
) -> tuple[float, float]:
    """``kills`` times: start ``server`` (a ``RestartableServer``), let ``writers`` writers write
    (to ``ns``, or spread over several namespaces) for a random 0.4-1.1 s, ``kill -9`` it
    mid-storm, run ``after_kill``, start it again and check every acknowledged write is there.
    Returns (writes acknowledged, the most writes per grouped COMMIT seen); ``shared`` gets
    :func:`namespaces_per_shared_transaction` before each kill (PostgreSQL)."""
    rng = random.Random(kills)
    acked = per_commit = 0.0
    spaces = [ns] if isinstance(ns, str) else list(ns)
    for kill in range(kills):
        server.start()
        stop = threading.Event()
        team = [
            Writer(server.port, spaces[i % len(spaces)], f"k{kill}w{i}", stop)
            for i in range(writers)
        ]
        for w in team:
            w.start()
        time.sleep(rng.uniform(0.4, 0.9))
        per_commit = max(per_commit, writes_per_commit(server.port))
        if shared is not None:
            shared.append(namespaces_per_shared_transaction(server.port))
        time.sleep(rng.uniform(0.0, 0.2))
        server.kill9()  # mid-storm: groups open, answers in flight
        stop.set()
        for w in team:
            w.join(timeout=30)
        if after_kill is not None:
            after_kill()
        server.start()
        lost = sum(
            verify_acked(server.port, space, [w for w in team if w.ns == space]) for space in spaces
        )
        count = sum(len(w.keys) + len(w.items) for w in team)
        acked += count
        assert count > 0, "the writers wrote nothing before the kill"
        assert lost == 0, f"kill {kill + 1}: {lost} of {count} acknowledged writes lost"
        server.kill9()
    return acked, per_commit
