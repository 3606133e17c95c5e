"""The writes' pipeline (``_pg_wait.pipelined``, ``AsyncPgTx`` with prepared statements): bound
arguments must be what psycopg's text dumpers write and come back from PostgreSQL unchanged; a
refused statement must raise what a cursor raises and stop those after it; a cancelled wait, a
lost connection and a pipeline larger than the socket takes must leave no connection stuck in
pipeline mode; and a store's writes must go this way wherever statements are prepared (never
behind a transaction-mode pooler, ``prepare_threshold=None``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat
from psycopg.pq import PipelineStatus, TransactionStatus
from support.postgres import async_writer
from support.sqlvalues import TRICKY, rows

from botwire import Memory
from botwire.store import Op
from botwire_server.storage import _pg_wait
from botwire_server.storage._pg_bind import arguments
from botwire_server.storage._pg_prepare import Prepared
from botwire_server.storage._pg_wait import pipelined
from botwire_server.storage._pg_write import AsyncPgTx, WriteConnection, transformer
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

#: one typed statement per column type the engine writes: each parameter's type is known
TYPED = {
    str: "SELECT ?::text, ?::text",
    bytes: "SELECT ?::bytea, ?::text",
    int: "SELECT ?::bigint, ?::text",
    float: "SELECT ?::float8, ?::text",
    bool: "SELECT ?::boolean, ?::text",
}
VALUES: list[Any] = [*TRICKY, "$1", 5e-324, float("inf"), float("-inf")]


class Loop:
    """One event loop and one connection, with :data:`TYPED` prepared on it."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: psycopg.AsyncConnection[Any] = self.run(
            WriteConnection.connect(url, autocommit=True)
        )
        self.names: dict[str, str] = {}
        for i, sql in enumerate(TYPED.values()):
            name = f"t_pipe{i}"
            numbered = sql.replace("?", "$1", 1).replace("?", "$2", 1)
            self.run(self.conn.execute(f"PREPARE {name} AS {numbered}"))
            self.names[sql] = name

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def tx(self) -> AsyncPgTx:
        return AsyncPgTx(self.conn, prepared=Prepared(enabled=True), names=self.names)

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module")
def loop(postgres_url: str) -> Iterator[Loop]:
    lp = Loop(postgres_url)
    yield lp
    lp.close()


def _round_trip(loop: Loop, values: list[Any]) -> list[Any]:
    async def body() -> list[Any]:
        tx = loop.tx()
        at = [tx.queue(TYPED[type(v)], (v, "after")) for v in values]
        assert all(not isinstance(item, bytes) for item, _ in tx._queue)  # bound, not literals
        got = await tx.send()
        return [list(got[i][0]) for i in at]  # type: ignore[index]

    rows = loop.run(body())
    assert loop.conn.pgconn.pipeline_status == PipelineStatus.OFF
    assert all(row[1] == "after" for row in rows)
    return [row[0] for row in rows]


@pytest.mark.parametrize("value", [v for v in VALUES if v is not None], ids=repr)
def test_arguments_are_what_psycopgs_text_dumpers_write(loop: Loop, value: Any) -> None:
    tx = transformer(loop.conn)
    assert arguments(tx, [value, None]) == [
        bytes(tx.get_dumper(value, PyFormat.TEXT).dump(value)),
        None,
    ]


def test_a_transactions_floats_are_written_once_and_stay_exact(loop: Loop) -> None:
    """The transaction's memo of floats (``arguments(..., floats)``) answers what psycopg
    writes for every float, repeated or not; ``-0.0`` and ``0.0``, equal as keys, stay apart."""
    tx = transformer(loop.conn)
    floats: dict[float, bytes] = {}
    values = [1765100000.123456, 0.0, -0.0, 1765100000.123456, -0.0, 0.0, 2.5e-300, 2.5e-300]
    want = [bytes(tx.get_dumper(v, PyFormat.TEXT).dump(v)) for v in values]
    assert arguments(tx, values[:4], floats) + arguments(tx, values[4:], floats) == want
    assert set(floats) == {1765100000.123456, 2.5e-300}


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_value_comes_back_unchanged(loop: Loop, value: Any) -> None:
    got = _round_trip(loop, [value])[0]
    assert got == value and type(got) is type(value)
    if isinstance(value, float):
        assert str(got) == str(value)  # -0.0 stays negative


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows(st.booleans()))
def test_random_values_come_back_unchanged(loop: Loop, values: list[Any]) -> None:
    assert _round_trip(loop, values) == values


def test_a_string_holding_nul_is_refused_as_psycopg_refuses_it(loop: Loop) -> None:
    with pytest.raises(psycopg.DataError):
        loop.tx().queue(TYPED[str], ("a\x00b", "after"))


def test_a_refused_statement_raises_as_a_cursor_would_and_stops_the_rest(loop: Loop) -> None:
    async def body() -> tuple[type[BaseException], Any, Any]:
        await loop.conn.execute("CREATE TEMP TABLE IF NOT EXISTS piped (a bigint)")
        tx = loop.tx()
        tx.queue(b"BEGIN")
        tx.queue(TYPED[int], (1, "x"))
        tx.queue("INSERT INTO piped VALUES (1)")  # text, no parameters: runs
        tx.queue(TYPED[int], ("not a number", "x"))  # refused by bigint's input
        tx.queue("INSERT INTO piped VALUES (2)")  # skipped
        with pytest.raises(psycopg.Error) as caught:
            await tx.send()
        status = loop.conn.info.transaction_status
        await loop.conn.execute("ROLLBACK")
        await loop.conn.execute("INSERT INTO piped VALUES (3)")
        rows = await (await loop.conn.execute("SELECT a FROM piped ORDER BY a")).fetchall()
        return type(caught.value), status, rows

    error, status, rows = loop.run(body())
    assert error is psycopg.errors.InvalidTextRepresentation
    assert status == TransactionStatus.INERROR  # rolled back by the caller
    assert rows == [(3,)]  # neither 1 (rolled back) nor 2 (never run)
    assert loop.conn.pgconn.pipeline_status == PipelineStatus.OFF


def test_an_optional_last_statement_refused_after_commit_keeps_the_commit(loop: Loop) -> None:
    async def body() -> tuple[Any, Any, Any]:
        await loop.conn.execute("CREATE TEMP TABLE IF NOT EXISTS kept (a bigint)")
        tx = loop.tx()
        tx.queue(b"BEGIN")
        tx.queue("INSERT INTO kept VALUES (?)", (7,))
        tx.queue(b"COMMIT")
        tx.queue(TYPED[int], ("x", "y"))
        got = await tx.send(optional_last=True)
        rows = await (await loop.conn.execute("SELECT a FROM kept")).fetchall()
        return got, tx.failed_last, rows

    got, failed, rows = loop.run(body())
    assert got == [None, None, None, None]
    assert isinstance(failed, psycopg.errors.InvalidTextRepresentation)
    assert rows == [(7,)]


def _connect_and_run(url: str, body: Any) -> Any:
    async def main() -> Any:
        conn = await WriteConnection.connect(url, autocommit=True)
        await conn.execute("PREPARE t_sleep AS SELECT pg_sleep($1)")
        try:
            return await asyncio.wait_for(body(conn), 60)  # a lost wake-up fails, not hangs
        finally:
            await conn.close()

    return asyncio.run(main())


def test_a_cancelled_wait_cancels_the_pipeline_and_leaves_the_connection_usable(
    postgres_url: str,
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any]) -> tuple[float, Any, Any, Any]:
        statements: list[_pg_wait.Statement] = [(b"BEGIN", None), (b"t_sleep", [b"30"])]
        task = asyncio.ensure_future(pipelined(conn, statements))
        await asyncio.sleep(0.3)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - start
        mode, status = conn.pgconn.pipeline_status, conn.info.transaction_status
        await conn.execute("ROLLBACK")
        row = await (await conn.execute("SELECT 'usable'")).fetchone()
        return took, mode, status, row

    took, mode, status, row = _connect_and_run(postgres_url, body)
    assert took < 10  # cancelled on the server, not waited out
    assert mode == PipelineStatus.OFF
    assert status == TransactionStatus.INERROR
    assert row == ("usable",)


def test_a_connection_lost_during_a_pipeline_is_an_operational_error(postgres_url: str) -> None:
    async def body(conn: psycopg.AsyncConnection[Any]) -> bool:
        pid = conn.info.backend_pid
        task = asyncio.ensure_future(pipelined(conn, [(b"t_sleep", [b"30"])]))
        await asyncio.sleep(0.3)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            await task
        return conn.pgconn.pipeline_status == PipelineStatus.OFF or conn.closed

    assert _connect_and_run(postgres_url, body)  # never lent again in pipeline mode


def test_a_pipeline_larger_than_the_socket_takes_is_sent_whole(loop: Loop) -> None:
    big = "x" * (24 * 1024 * 1024)
    assert _round_trip(loop, [big, "small"]) == [big, "small"]


def test_a_blocking_connection_runs_the_same_pipeline(postgres_url: str) -> None:
    with psycopg.Connection.connect(postgres_url, autocommit=True) as conn:
        conn.execute("PREPARE t_pair AS SELECT $1::text, $2::bigint")
        res = asyncio.run(
            _no_loop(
                pipelined(conn, [(b"BEGIN", None), (b"t_pair", [b"a'b", b"42"]), (b"COMMIT", None)])
            )
        )
        assert [r.ntuples for r in res] == [0, 1, 0]
        assert (res[1].get_value(0, 0), res[1].get_value(0, 1)) == (b"a'b", b"42")
        assert conn.pgconn.pipeline_status == PipelineStatus.OFF


async def _no_loop(coro: Any) -> Any:
    return await coro


def _count_bound(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """For each pipeline the writes send from now on, how many of its statements went bound."""
    used: list[int] = []
    real = _pg_wait.pipelined

    async def spy(conn: Any, statements: list[_pg_wait.Statement]) -> Any:
        used.append(sum(args is not None for _, args in statements))
        return await real(conn, statements)

    monkeypatch.setattr("botwire_server.storage._pg_write.pipelined", spy)
    return used


@pytest.mark.parametrize("pooler", [False, True], ids=["prepared", "pooler"])
def test_a_stores_writes_go_bound_where_statements_are_prepared(
    postgres_url: str, ns: str, monkeypatch: pytest.MonkeyPatch, pooler: bool
) -> None:
    """After a few writes (``HOT_AFTER``) a store's statements are prepared and its writes are
    pipelines of bound arguments; behind a transaction-mode pooler (``prepare_threshold=None``)
    they stay simple queries of literals. Either way every value reads back as written."""
    used = _count_bound(monkeypatch)
    kwargs: dict[str, Any] = {"prepare_threshold": None} if pooler else {}
    store = PostgresStore(postgres_url, **kwargs)
    try:
        mem = Memory(ns, store=store)
        tricky = ["it's", "%s ? $1", "ünï ✓", "", "x" * 5000]
        for i, value in enumerate(tricky * 2):
            mem.set(f"k{i}", {"v": value, "i": i, "f": -0.0})
            mem.append("log", value)
        store.batch(ns, [Op("incr", "n", by=3), Op("set", "last", value='"done"')])
        for i, value in enumerate(tricky * 2):
            assert mem.get(f"k{i}") == {"v": value, "i": i, "f": -0.0}
        assert mem.get("log") == tricky * 2
        assert mem.get("n") == 3 and mem.get("last") == "done"
    finally:
        store.close()
    if pooler:
        assert used == []
    else:
        assert used and max(used) > 3  # the writes' statements went bound


@pytest.mark.parametrize("pooler", [False, True], ids=["prepared", "pooler"])
def test_the_event_loops_writes_go_bound_where_statements_are_prepared(
    postgres_url: str, ns: str, monkeypatch: pytest.MonkeyPatch, pooler: bool
) -> None:
    """The server's writes (``async_reader``, on the event loop), concurrent ones grouped into
    one transaction among them: bound once their statements are prepared, never behind a
    pooler; every answer and value as written."""
    used = _count_bound(monkeypatch)
    kwargs: dict[str, Any] = {"prepare_threshold": None} if pooler else {}

    async def main() -> list[Any]:
        async with async_writer(postgres_url, **kwargs) as (w, store):
            for i in range(4):  # past HOT_AFTER: the statements get prepared
                await w.batch(ns, [Op("set", f"warm{i}", value=f'"{i}"')])
            calls = [w.batch(ns, [Op("append", "log", items=(f'"it\'s {i}"',))]) for i in range(20)]
            calls += [w.batch(ns, [Op("incr", "n", by=2)]) for _ in range(20)]
            await asyncio.gather(*calls)
            return [
                store.get(ns, "log").value,
                store.get(ns, "n").value,
                store.get(ns, "warm3").value,
            ]

    log, n, warm = asyncio.run(main())
    assert sorted(log) == sorted(f"it's {i}" for i in range(20))
    assert n == 40 and warm == "3"
    if pooler:
        assert used == []
    else:
        assert used and max(used) > 3
