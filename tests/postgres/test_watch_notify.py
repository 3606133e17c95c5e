"""Replicas tell each other which namespaces they wrote (``WatchHub``: NOTIFY on an async
connection in the event loop, LISTEN in a thread). A replica's own notifications come back to
its listener and are skipped (its writes woke its waiters already); another replica's wake it,
each once per send; and a lost notify connection is replaced at the next write."""

from __future__ import annotations

import asyncio
import collections
import uuid

import psycopg
import pytest

from botwire_server.storage.postgres import PostgresStore
from botwire_server.watch import WatchHub

pytestmark = pytest.mark.postgres


class Replica:
    """A hub on its own store, counting the wake-ups of each namespace."""

    def __init__(self, url: str) -> None:
        self.store = PostgresStore(url, min_size=1, max_size=2)
        self.hub = WatchHub(self.store, max_watchers=10, per_namespace=10)
        self.woken: collections.Counter[str] = collections.Counter()
        wake = self.hub.wake

        def counted(ns: str) -> None:
            self.woken[ns] += 1
            wake(ns)

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
            assert one.hub._send_pid > 0

            # The notify connection is killed: the next write's notify fails (logged, the
            # other replica's waiters wake at their hold's end), the one after reconnects.
            await asyncio.to_thread(_terminate, postgres_url, one.hub._send_pid)
            for _ in range(2):
                one.hub.written(ns)
                await _settle()
            assert two.woken[ns] >= 2, two.woken
            assert one.woken[ns] == 3, one.woken
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())
