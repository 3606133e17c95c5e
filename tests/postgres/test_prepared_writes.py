"""The event loop's writes send their hot statements as ``EXECUTE`` of statements prepared on
each write connection (``_pg_prepare``): same answers, hostile text intact, a session that lost
its statements recovers by itself, a statement PostgreSQL cannot prepare stays plain, and
nothing is prepared behind a transaction-mode pooler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pytest
from support.postgres import with_async_reader

from botwire import Conflict
from botwire.store import Op
from botwire_server.storage._pg_prepare import HOT_AFTER, Prepared, numbered
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
T = TypeVar("T")

HOSTILE_KEY = "k'%s?$1\\"
HOSTILE_VALUE = json.dumps({"t": "'); DEALLOCATE ALL; -- %s %% ? $1 \\ \u00e9 \U0001f600"})


def test_hot_statements_go_as_execute_with_the_same_answers(
    make_store: MakeStore, ns: str, sent: list[str]
) -> None:
    store = make_store(async_writes=True, min_size=1, max_size=1)

    async def body(writer: Any) -> list[Any]:
        out = []
        for i in range(HOT_AFTER + 2):
            out.append(await writer.batch(ns, [Op("set", HOSTILE_KEY, value=HOSTILE_VALUE)]))
            out.append(await writer.batch(ns, [Op("append", "l", items=(HOSTILE_VALUE, f'"{i}"'))]))
        return out

    sent.clear()
    with_async_reader(store, body)
    last = " ".join(sent[-4:])
    assert "EXECUTE bw_w" in last, sent[-4:]
    assert "INSERT INTO" not in last  # every write statement of the last write was prepared
    entry = store.get(ns, HOSTILE_KEY)
    assert entry is not None and entry.value == json.loads(HOSTILE_VALUE)
    items = store.get(ns, "l")
    assert items is not None
    assert items.value[-2:] == [json.loads(HOSTILE_VALUE), str(HOT_AFTER + 1)]
    assert len(items.value) == 2 * (HOT_AFTER + 2)


def test_a_session_that_lost_its_statements_recovers(make_store: MakeStore, ns: str) -> None:
    store = make_store(async_writes=True, min_size=1, max_size=1)

    async def body(writer: Any) -> tuple[int, int, Any]:
        for _ in range(HOT_AFTER + 1):
            await writer.batch(ns, [Op("incr", "n")])
        before = writer.prepared.prepares
        # Something resets the session (a pooler's server_reset_query, an operator):
        conn = await writer._wpool.getconn()
        await conn.execute("DEALLOCATE ALL")
        await writer._wpool.putconn(conn)
        result = await writer.batch(ns, [Op("incr", "n")])
        return before, writer.prepared.prepares, result

    before, after, result = with_async_reader(store, body)
    assert result[0]["value"] == HOT_AFTER + 2  # applied once, after one transparent retry
    assert after > before  # prepared again
    found = store.get(ns, "n")
    assert found is not None and found.value == HOT_AFTER + 2


def test_nothing_is_prepared_behind_a_transaction_pooler(
    make_store: MakeStore, ns: str, sent: list[str]
) -> None:
    store = make_store(async_writes=True, prepare_threshold=None)

    async def body(writer: Any) -> int:
        for _ in range(HOT_AFTER + 3):
            await writer.batch(ns, [Op("set", "k", value="1")])
        count: int = writer.prepared.prepares
        return count

    assert with_async_reader(store, body) == 0
    assert not any("EXECUTE" in text or "PREPARE" in text for text in sent)


def test_a_statement_postgres_cannot_prepare_stays_plain(postgres_url: str) -> None:
    async def main() -> None:
        prepared = Prepared(enabled=True)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            for _ in range(HOT_AFTER):
                prepared.used("SELECT ? IS NULL")  # $1's type cannot be inferred
                prepared.used("SELECT count(*) FROM bw_entries WHERE ns = ?")
            names = await prepared.ready(conn)
            assert list(names) == ["SELECT count(*) FROM bw_entries WHERE ns = ?"]
            for _ in range(HOT_AFTER):
                prepared.used("SELECT ? IS NULL")  # refused once: never tried again
            assert await prepared.ready(conn) == names
            assert prepared.prepares == 1
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    asyncio.run(main())


def test_numbered_placeholders() -> None:
    assert numbered("SELECT ? WHERE a = ? AND b = ?") == "SELECT $1 WHERE a = $2 AND b = $3"
    assert numbered("SELECT 1") == "SELECT 1"


def test_refused_writes_keep_the_statements_prepared(make_store: MakeStore, ns: str) -> None:
    """Refused writes roll back (``ROLLBACK``, ``ROLLBACK TO SAVEPOINT``). Had psycopg prepared
    anything of its own on the connection (its ``ROLLBACK``, after 5), a rollback in a new query
    would make it send ``DEALLOCATE ALL``, dropping the writes' statements too (found by
    ``test_write_prefetch``'s random batches: ``prepared statement "bw_w3" does not exist``)."""
    store = make_store(async_writes=True, min_size=1, max_size=1)

    async def body(writer: Any) -> tuple[int, int]:
        for _ in range(HOT_AFTER + 1):
            await writer.batch(ns, [Op("set", "k", value="1")])
        before = writer.prepared.prepares
        for _ in range(8):  # past psycopg's prepare threshold (5) for ROLLBACK itself
            with pytest.raises(Conflict):
                await writer.batch(ns, [Op("set", "k", value="2", if_absent=True)])
        # a non-atomic batch whose refused op rolls back to its savepoint: "ROLLBACK" again
        await writer.batch(
            ns, [Op("set", "k", value="2", if_absent=True), Op("set", "j", value="1")], atomic=False
        )
        for _ in range(3):
            await writer.batch(ns, [Op("set", "k", value="3")])
        return before, writer.prepared.prepares

    before, after = with_async_reader(store, body)
    assert after == before  # nothing had to be prepared again
