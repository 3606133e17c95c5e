"""Replicas tell each other which namespaces they wrote (``WatchHub``: NOTIFY on an async
connection in the event loop, LISTEN on another, in the event loop too). A replica's own
notifications come back to its listener and are skipped (its writes woke its waiters already);
another replica's wake it, each once per send; a lost notify connection is replaced at the next
write, a lost listening one at once; and the listener runs in no thread of its own."""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
import uuid
from collections.abc import Collection

import psycopg
import pytest

from botwire_server.storage.postgres import PostgresStore
from botwire_server.watch import NOTIFY_INTERVAL, PAYLOAD_BYTES, WatchHub, payloads

pytestmark = pytest.mark.postgres


class Replica:
    """A hub on its own store, counting the wake-ups of each namespace."""

    def __init__(self, url: str) -> None:
        self.store = PostgresStore(url, min_size=1, max_size=2)
        self.hub = WatchHub(self.store, max_watchers=10, per_namespace=10)
        self.woken: collections.Counter[str] = collections.Counter()
        wake = self.hub.wake

        def counted(ns: str, keys: Collection[str] | None = None) -> None:
            self.woken[ns] += 1
            wake(ns, keys)

        self.hub.wake = counted  # type: ignore[method-assign]

    async def open(self) -> None:
        """Open the hub; return once its listener is up (after its start-up probe came back,
        it wakes every waiter)."""
        ready = asyncio.Event()
        wake_all = self.hub.wake_all

        def listening() -> None:
            ready.set()
            wake_all()

        self.hub.wake_all = listening  # type: ignore[method-assign]
        await self.hub.open()
        await asyncio.wait_for(ready.wait(), 30)

    async def close(self) -> None:
        await self.hub.close()
        self.store.close()


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def _settle(seconds: float = 0.6) -> None:
    await asyncio.sleep(seconds)


def test_own_notifications_are_skipped_and_others_wake_once(postgres_url: str) -> None:
    async def main() -> None:
        one, two = Replica(postgres_url), Replica(postgres_url)
        await one.open()
        await two.open()
        try:
            await _settle(1.0)  # the start-up probes and their wake_all are over
            one.woken.clear()
            two.woken.clear()
            ns = f"notify-{uuid.uuid4().hex[:8]}"
            one.hub.written(ns)
            await _settle()
            assert one.woken[ns] == 1, one.woken  # its own write, once: not again from LISTEN
            assert two.woken[ns] == 1, two.woken  # the other replica's notification
            sender = one.hub._send_conn.info.backend_pid

            # The notify connection is killed: the next write's notify fails (logged, the
            # other replica's waiters wake at their hold's end), the one after reconnects.
            await asyncio.to_thread(_terminate, postgres_url, sender)
            for _ in range(2):
                one.hub.written(ns)
                await _settle()
            assert two.woken[ns] >= 2, two.woken
            assert one.woken[ns] == 3, one.woken
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())


def test_a_burst_of_writes_shares_few_notify_statements(postgres_url: str) -> None:
    """2,000 writes to 300 namespaces (long names: their payloads pass PostgreSQL's 8000-byte
    limit) over about 0.2 s: at most one notify statement per ``NOTIFY_INTERVAL``, and every
    namespace wakes the other replica."""

    async def main() -> None:
        one, two = Replica(postgres_url), Replica(postgres_url)
        await one.open()
        await two.open()
        statements: list[list[str]] = []
        notify = one.hub._notify

        async def counted(payloads: list[str]) -> None:
            statements.append(payloads)
            await notify(payloads)

        one.hub._notify = counted  # type: ignore[method-assign]
        try:
            await _settle(1.0)
            two.woken.clear()
            tag = uuid.uuid4().hex[:8]
            names = [f"burst-{tag}-{i:03d}-" + "x" * 100 for i in range(300)]
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(2000):
                one.hub.written(names[i % 300])
                if i % 10 == 0:
                    await asyncio.sleep(0.0005)  # the sender runs between the writes
            elapsed = loop.time() - start
            await _settle()
            assert {ns for ns in names if two.woken[ns] == 0} == set()
            # at most one statement per NOTIFY_INTERVAL (one per write before)
            assert len(statements) <= elapsed / NOTIFY_INTERVAL + 2, (len(statements), elapsed)
            sent = [p for payloads in statements for p in payloads]
            assert max(len(p.encode()) for p in sent) <= 7900
            assert sorted({ns for p in sent for ns in p.split(" ")}) == names
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())


def _backends(url: str, pid: int) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return int(row.fetchone()[0])  # type: ignore[index]


async def _until(check: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_the_hub_listens_on_its_event_loop_and_reconnects(postgres_url: str) -> None:
    """The server's listener is a task of its event loop, not a thread: a thread of its own
    woke for every notification, the replica's own too, and took the interpreter's lock from
    the event loop to read it (5-8% of P3's PostgreSQL writes). Its session ended, it
    reconnects and hears the other replica again; closed, its session ends."""

    async def main() -> None:
        one, two = Replica(postgres_url), Replica(postgres_url)
        await one.open()
        await two.open()
        try:
            listening = [t.name for t in threading.enumerate() if "listen" in t.name]
            assert listening == [], listening
            listener = one.hub._listener
            assert listener is not None
            first = listener.backend_pid
            assert first > 0
            await asyncio.to_thread(_terminate, postgres_url, first)
            await _until(lambda: listener.backend_pid not in (0, first), "a new LISTEN session")
            await _settle(0.3)
            one.woken.clear()
            ns = f"again-{uuid.uuid4().hex[:8]}"
            two.hub.written(ns)
            await _settle()
            assert one.woken[ns] == 1, one.woken
            second = listener.backend_pid
        finally:
            await one.close()
            await two.close()
        deadline = time.monotonic() + 10
        while await asyncio.to_thread(_backends, postgres_url, second):  # its Terminate, read
            assert time.monotonic() < deadline, "the closed listener's session lives on"
            await asyncio.sleep(0.05)

    asyncio.run(main())


def test_payloads_split_names_under_the_limit() -> None:
    names = [f"n{i}-" + "y" * (i % 128) for i in range(500)]
    out = payloads(names)
    assert [ns for p in out for ns in p.split(" ")] == names
    assert all(len(p) <= PAYLOAD_BYTES for p in out)
    assert all(
        len(a) + 1 + len(b.split(" ")[0]) > PAYLOAD_BYTES for a, b in itertools.pairwise(out)
    )
    assert payloads([]) == [] and payloads(["a"]) == ["a"]
