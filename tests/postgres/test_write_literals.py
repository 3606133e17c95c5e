"""The event-loop writer binds parameters and reads results without a cursor (``_pg_write``):
its literals must be exactly what psycopg's ``ClientCursor.mogrify`` writes, every value must
come back from PostgreSQL unchanged, and a refused statement must raise the error a cursor
raises, with the transaction left for the caller to roll back. Each check runs on a plain
connection (a new ``Transformer`` per transaction) and on a ``WriteConnection``, whose one
``Transformer`` serves every transaction of the module, whatever types came before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import Transformer
from support.sqlvalues import TRICKY, rows

from botwire_server.storage._pg_bind import literals
from botwire_server.storage._pg_common import pg_sql
from botwire_server.storage._pg_write import AsyncPgTx, WriteConnection, transformer

pytestmark = pytest.mark.postgres

VALUES: list[Any] = [None, *TRICKY]


class Loop:
    """One event loop and connection for a test's many examples."""

    def __init__(self, url: str, cls: type[psycopg.AsyncConnection[Any]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: psycopg.AsyncConnection[Any] = self.run(cls.connect(url, autocommit=True))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module", params=["plain", "write"])
def loop(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[Loop]:
    lp = Loop(
        postgres_url, WriteConnection if request.param == "write" else psycopg.AsyncConnection
    )
    yield lp
    lp.close()


def _select(loop: Loop, params: list[Any]) -> list[Any]:
    """``SELECT`` of ``params``; a float's literal, alone, is read back as ``numeric`` (as a
    cursor's is; the engine's floats go to ``double precision`` columns), so as a float."""

    async def body() -> list[Any]:
        tx = AsyncPgTx(loop.conn)
        at = tx.queue("SELECT " + ", ".join(["?"] * len(params)), params)
        rows = (await tx.send())[at]
        assert rows is not None
        return list(rows[0])

    got = loop.run(body())
    return [float(g) if isinstance(p, float) else g for p, g in zip(params, got, strict=True)]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_literals_are_what_client_cursor_mogrify_writes(loop: Loop, value: Any) -> None:
    sql = "UPDATE t SET a = ?, b = '%' WHERE c = ?"  # a literal % too, as pg_sql escapes it
    cur = psycopg.ClientCursor(loop.conn)  # type: ignore[arg-type]
    expected = cur.mogrify(pg_sql(sql), (value, "k")).encode()
    template = pg_sql(sql).encode()
    assert template % literals(transformer(loop.conn), (value, "k"), {}) == expected


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_value_comes_back_unchanged(loop: Loop, value: Any) -> None:
    assert _select(loop, [value, "after"]) == [value, "after"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows(st.none()))
def test_random_values_come_back_unchanged(loop: Loop, params: list[Any]) -> None:
    assert _select(loop, params) == params


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(),  # unbounded: past int8, numeric literals
            st.integers(-(2**63), 2**63 - 1),
            st.floats(),  # NaN, infinities, -0.0, subnormals
            st.sampled_from([0, -0, 0.0, -0.0, 5e-324, -5e-324, 1e16, -1e-7]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_numbers_are_written_as_psycopg_writes_them(params: list[Any]) -> None:
    """``literals`` writes ints and finite floats itself: byte for byte what psycopg's
    ``Transformer.as_literal`` writes (no connection needed for numbers), with or without
    a transaction's float texts kept (``floats``), read back in the next statement and in
    reverse order; what is kept is what ``arguments`` writes (which shares the memo), so a
    negative's text is kept without the space its literal leads with."""
    tx = Transformer()
    expected = tuple(tx.as_literal(p) for p in params)
    assert literals(tx, params, {}) == expected
    floats: dict[float, bytes] = {}
    assert literals(tx, params, {}, floats) == expected
    assert literals(tx, params, {}, floats) == expected
    assert literals(tx, params[::-1], {}, floats) == expected[::-1]
    assert all(text == repr(value).encode() for value, text in floats.items())


def test_a_refused_statement_raises_as_a_cursor_would(loop: Loop) -> None:
    """Division by zero in the middle of a queue: ``DivisionByZero`` with its SQLSTATE, the
    transaction failed (the caller rolls back), the connection usable after."""

    async def body() -> None:
        tx = AsyncPgTx(loop.conn)
        tx.queue(b"BEGIN")
        tx.queue("SELECT ?", [1])
        tx.queue("SELECT 1 / ?", [0])
        tx.queue("SELECT ?", [2])
        with pytest.raises(psycopg.errors.DivisionByZero) as err:
            await tx.send()
        assert err.value.sqlstate == "22012"
        status = loop.conn.info.transaction_status
        assert status == psycopg.pq.TransactionStatus.INERROR
        await loop.conn.execute("ROLLBACK")
        tx.queue("SELECT ?", ["fine"])
        assert await tx.send() == [[("fine",)]]

    loop.run(body())


def test_values_equal_in_python_keep_their_own_literals(loop: Loop) -> None:
    """A transaction writes each distinct literal once (``_pg_bind.literals``): values that
    Python finds equal, or hashes alike, must still be written as themselves (as
    ``ClientCursor.mogrify`` writes them), within one statement and across the statements of
    one transaction, and come back equal."""
    tricky: list[Any] = [
        0.0,
        -0.0,
        0,
        False,
        1,
        True,
        1.0,
        "1",
        b"1",
        "",
        b"",
        float("nan"),
        float("inf"),
        2**63 - 1,
        float(2**63 - 1),
        "a",
        "a",
    ]
    sql = "SELECT " + ", ".join(["?"] * len(tricky))
    statements = [tricky, list(reversed(tricky))]
    cur = psycopg.ClientCursor(loop.conn)  # type: ignore[arg-type]

    async def body() -> tuple[list[bytes], list[Any]]:
        tx = AsyncPgTx(loop.conn)
        at = [tx.queue(sql, params) for params in statements]
        queued = [text for text, _ in tx._queue]
        got = await tx.send()
        return queued, [list(got[i][0]) for i in at]  # type: ignore[index]

    queued, rows = loop.run(body())
    for params, text, row in zip(statements, queued, rows, strict=True):
        assert text == cur.mogrify(pg_sql(sql), params).encode()
        for p, g in zip(params, row, strict=True):
            if isinstance(p, float):  # alone, a float's literal is read back as numeric
                g = float(g)
            assert (g != g) if p != p else (g == p and type(g) is type(p)), (p, g)


def test_a_list_parameter_is_written_without_the_memo(loop: Loop) -> None:
    """An unhashable parameter (an array) is not remembered, and still bound."""

    async def body() -> Any:
        tx = AsyncPgTx(loop.conn)
        at = tx.queue("SELECT ?::text[], ?::text[]", [["a", "b"], ["a", "b"]])
        return (await tx.send())[at]

    assert loop.run(body()) == [(["a", "b"], ["a", "b"])]


def test_a_write_connection_keeps_one_transformer(loop: Loop) -> None:
    """A ``WriteConnection``'s transactions share its ``Transformer`` (its loaders and dumpers
    found once); a plain connection's each get a new one."""
    first, second = transformer(loop.conn), transformer(loop.conn)
    assert (first is second) == isinstance(loop.conn, WriteConnection)
    assert isinstance(first, Transformer)
    # the types of one transaction's results are not the next one's
    assert _select(loop, [1, "a"]) == [1, "a"]
    assert _select(loop, ["b", b"\x00", None]) == ["b", b"\x00", None]
    assert _select(loop, [2.5, True]) == [2.5, True]
    assert first.pgresult is None  # the last result is not kept past its send


def test_a_refused_send_keeps_no_result(loop: Loop) -> None:
    async def body() -> None:
        tx = AsyncPgTx(loop.conn)
        tx.queue("SELECT ?", ["x" * 100_000])
        tx.queue("SELECT 1 / ?", [0])
        with pytest.raises(psycopg.errors.DivisionByZero):
            await tx.send()

    loop.run(body())
    if isinstance(loop.conn, WriteConnection):
        assert transformer(loop.conn).pgresult is None


def test_the_write_pool_hands_out_write_connections(postgres_url: str) -> None:
    from botwire_server.storage.postgres import PostgresStore

    store = PostgresStore(postgres_url, async_writes=True)

    async def main() -> list[Any]:
        reader = store.async_reader()
        await reader.open()
        try:
            assert reader._wpool is not None
            async with reader._wpool.connection() as conn:
                assert isinstance(conn, WriteConnection)
                return [transformer(conn), transformer(conn)]
        finally:
            await reader.close()

    try:
        first, second = asyncio.run(main())
    finally:
        store.close()
    assert first is second
