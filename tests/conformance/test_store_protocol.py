"""Our own stores through the kit's store-level cases (``botwire.testing.ProtocolCases``): the
six required methods, and each optional capability they offer honoured. ``SQLiteStore`` offers
all but ``async_reader`` (reported not applicable, with the server's default); ``PostgresStore``
offers all but ``needs_sweep`` (it frees a list's rows in the write) and ``batch_group`` (group
commit, issue 22: SQLite's single writer; PostgreSQL commits concurrent writes in parallel).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.backends import LIMITS
from support.postgres import postgres_url as _postgres_url_fixture

from botwire.store import OPTIONAL, SQLiteStore, capabilities
from botwire.testing import Backend, Clock, ProtocolCases, StoreBackend

postgres_url = _postgres_url_fixture()


class TestSQLiteStore(ProtocolCases):
    store_limits = LIMITS

    def make_store(self, clock: Clock) -> SQLiteStore:
        return SQLiteStore(self.tmp_path / "s.db", limits=LIMITS, clock=clock)

    def test_offers_all_but_the_async_reader(self, store: SQLiteStore) -> None:
        assert capabilities(store) == set(OPTIONAL) - {"async_reader"}


@pytest.mark.postgres
class TestPostgresStore(ProtocolCases):
    @pytest.fixture
    def backend(self, postgres_url: str) -> Iterator[Backend]:
        from botwire_server.storage.postgres import PostgresStore

        clock = Clock()
        store = PostgresStore(postgres_url, limits=LIMITS, clock=clock)
        b = StoreBackend(store, clock, limits=LIMITS, name="postgres")
        try:
            yield b
        finally:
            b.close()

    def test_offers_all_but_sweeping(self, backend: Backend) -> None:
        assert capabilities(backend.store) == set(OPTIONAL) - {"needs_sweep", "batch_group"}
