"""A replica's notifications name its origin (``WatchHub``: a ``/<hex>`` token ahead of the
namespaces), and its listener skips its own by it: a backend's pid, which it went by before,
tells nothing behind a transaction-mode pooler (``test_pgbouncer.py``). Served as users run
it (``create_app`` under uvicorn, a database of its own), heard as another replica hears it (a
plain ``LISTEN``): quiet writes each tell the others with the hint of their key; a busy
replica's writes are coalesced, at most one notification per ``NOTIFY_INTERVAL``, and none of
its namespaces or keys is left out; and the replica's own notifications wake nobody again.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Collection, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from support.server import free_port, serving_app

from botwire_server import Settings, create_app
from botwire_server.storage._pg_listen import CHANNEL, parse
from botwire_server.watch import NOTIFY_INTERVAL

pytestmark = pytest.mark.postgres


class Served:
    """The application on ``url``'s database, its watch hub, and the wake-ups it counted."""

    def __init__(self, base: str, app: Any) -> None:
        self.base = base
        self.hub = app.state.botwire.extra["watch"]
        self.woken: collections.Counter[str] = collections.Counter()
        wake = self.hub.wake

        def counted(ns: str, keys: Collection[str] | None = None) -> None:
            self.woken[ns] += 1
            wake(ns, keys)

        self.hub.wake = counted


@pytest.fixture
def served(fresh_postgres_url: str) -> Iterator[Served]:
    port = free_port()
    app = create_app(Settings(host="127.0.0.1", port=port, database=fresh_postgres_url))
    with serving_app(app, port) as base:
        served = Served(base, app)
        time.sleep(1.0)  # the listener's start-up probe is back (it wakes every waiter)
        yield served


class Listening:
    """Another replica's ``LISTEN``, its notifications collected in a thread."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self.conn.notifies(timeout=0.1):
                self.notes.append(note.payload)

    def naming(self, ns_prefix: str) -> list[str]:
        return [p for p in self.notes if any(ns.startswith(ns_prefix) for ns, _ in parse(p))]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


@pytest.fixture
def listening(fresh_postgres_url: str) -> Iterator[Listening]:
    other = Listening(fresh_postgres_url)
    yield other
    other.close()


def _put(base: str, ns: str, key: str, value: object) -> None:
    r = httpx.put(f"{base}/v1/namespaces/{ns}/keys/{key}", json={"value": value})
    assert r.status_code == 200, r.text


def test_quiet_writes_each_tell_the_others_with_their_origin(
    served: Served, listening: Listening
) -> None:
    """Writes 50 ms apart: each arrives at the other replica as a notification of its own, with
    the hint of its key after the replica's origin; its own listener skipped them all (one
    wake-up per write: its own)."""
    ns = "quiet"
    for i in range(5):
        _put(served.base, ns, f"job/{i}", i)
        time.sleep(0.05)
    time.sleep(0.5)
    got = listening.naming(ns)
    assert [list(parse(p)) for p in got] == [[(ns, [f"job/{i}"])] for i in range(5)], got
    origins = {p.split(" ", 1)[0] for p in got}
    assert len(origins) == 1 and next(iter(origins)).startswith("/"), origins
    assert served.woken[ns] == 5, served.woken  # not again when its own came back


def test_a_busy_replica_still_coalesces_and_leaves_nothing_out(
    served: Served, listening: Listening
) -> None:
    """8 writers, 400 writes to 40 namespaces: every namespace reaches the other replica, with
    every key it was written under hinted, at most one notification per ``NOTIFY_INTERVAL``,
    and each of this replica's namespaces woke here once per write (its own notifications
    skipped)."""
    names = [f"busy-{i:02d}" for i in range(40)]
    started = time.monotonic()

    def write(i: int) -> None:
        _put(served.base, names[i % 40], f"k{i // 40}", i)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(400)))
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    got = listening.naming("busy-")
    hinted: dict[str, set[str]] = collections.defaultdict(set)
    for payload in got:
        for ns, keys in parse(payload):
            assert keys is not None, payload  # at most 10 keys a namespace: all hinted
            hinted[ns].update(keys)
    assert hinted == {ns: {f"k{j}" for j in range(10)} for ns in names}
    assert len(got) <= elapsed / NOTIFY_INTERVAL + 2, (len(got), elapsed)
    assert all(served.woken[ns] == 10 for ns in names), served.woken
