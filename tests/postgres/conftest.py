"""Fixtures of the PostgreSQL store suite: a real server (never skipped), stores, a clock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.backends import FakeClock
from support.postgres import postgres_url as _postgres_url_fixture

from botwire import Limits, Memory
from botwire_server.storage._pg_group import NamespaceGroups
from botwire_server.storage._pg_write import AsyncPgTx
from botwire_server.storage.postgres import PostgresStore

postgres_url = _postgres_url_fixture()  # one database for the session; tests use fresh namespaces
fresh_postgres_url = _postgres_url_fixture(scope="function", prefix="botwire_fresh")

MakeStore = Callable[..., PostgresStore]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(postgres_url: str) -> Iterator[MakeStore]:
    """Build ``PostgresStore``s on the session database (or ``url=``); all closed afterwards."""
    stores: list[PostgresStore] = []

    def make(
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        url: str | None = None,
        **kwargs: Any,
    ) -> PostgresStore:
        store = PostgresStore(url or postgres_url, limits=limits, clock=clock, **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: MakeStore, clock: FakeClock) -> PostgresStore:
    return make_store(clock=clock)


@pytest.fixture
def mem(store: PostgresStore, ns: str) -> Memory:
    return Memory(ns, store=store)


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A namespace no other test (or run against the same database) uses."""
    name = request.node.name.split("[")[0].removeprefix("test_")[:60]
    return f"pg-{name}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every simple query the event loop's writes send."""
    texts: list[str] = []
    send = AsyncPgTx.send

    async def spy(self: AsyncPgTx, **options: Any) -> Any:
        if self._queue:  # what send() joins into one query
            texts.append(b"; ".join(self.queued_texts()).decode())
        return await send(self, **options)

    monkeypatch.setattr(AsyncPgTx, "send", spy)
    return texts


@pytest.fixture(params=["join", "group"])
def joining(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways concurrent writes of one namespace share a transaction (``_pg_group``):
    ``join``, the writes that arrive while a lone write's first round trip is in flight join
    its transaction; ``group``, joining off (``NamespaceGroups._join`` takes nobody), so they
    wait for its ``COMMIT`` and form the next group, as writes arriving later do."""
    if request.param == "group":
        monkeypatch.setattr(NamespaceGroups, "_join", lambda self, namespace, joined, calls: None)
    return str(request.param)
