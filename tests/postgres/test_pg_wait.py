"""The wait of a write's round trip (``_pg_wait.results``), which replaces psycopg's wait loop:
it must return what ``AsyncConnection.wait(execute(pgconn))`` returns, send a query larger than
the socket takes at once, leave a cancelled wait's connection usable (the query cancelled on the
server, as psycopg does), and report a lost connection as psycopg's ``OperationalError``: ended
by the server, or reset (``RST``) under the wait, under asyncio's event loop and uvloop's (on
``POLLERR`` libuv stops a poll without a readable event: the wait must still end)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.generators import execute
from psycopg.pq import ExecStatus, TransactionStatus
from support.relay import Relay

from botwire_server.storage._pg_wait import results

pytestmark = pytest.mark.postgres


LOOPS = ["asyncio", "uvloop"]


def _run(url: str, body: Any, loop_kind: str = "asyncio") -> Any:
    async def main() -> Any:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            return await asyncio.wait_for(body(conn), 60)  # a lost wake-up fails, not hangs
        finally:
            await conn.close()

    if loop_kind == "uvloop":  # the server's event loop
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def _shape(res: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.status, r.ntuples, [r.get_value(i, 0) for i in range(r.ntuples)]) for r in res]


def test_results_are_what_psycopgs_wait_returns(postgres_url: str) -> None:
    """Several statements, rows and none, and a refused one in the middle (its error result
    ends the query, as in psycopg)."""
    query = (
        b"SELECT 1; SELECT g FROM generate_series(1, 3000) g; CREATE TEMP TABLE t (a int);"
        b" SELECT 1/0; SELECT 2"
    )

    async def body(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, Any]:
        conn.pgconn.send_query(query)
        ours = _shape(await results(conn))
        await conn.execute("DROP TABLE IF EXISTS t")
        conn.pgconn.send_query(query)
        theirs = _shape(await conn.wait(execute(conn.pgconn)))
        return ours, theirs

    ours, theirs = _run(postgres_url, body)
    assert ours == theirs
    assert [s for s, _, _ in ours] == [
        ExecStatus.TUPLES_OK,
        ExecStatus.TUPLES_OK,
        ExecStatus.COMMAND_OK,
        ExecStatus.FATAL_ERROR,
    ]
    assert ours[1][1] == 3000


def test_a_query_larger_than_the_socket_takes_is_sent_whole(postgres_url: str) -> None:
    """A 24 MB statement: the socket takes part of it, the rest is sent while PostgreSQL reads
    (waiting only for an answer would wait forever: PostgreSQL waits for the rest)."""
    big = "x" * (24 * 1024 * 1024)

    async def body(conn: psycopg.AsyncConnection[Any]) -> Any:
        conn.pgconn.send_query(f"SELECT length('{big}'), 'after'".encode())
        res = await results(conn)
        return [(r.get_value(0, 0), r.get_value(0, 1)) for r in res]

    assert _run(postgres_url, body) == [(str(len(big)).encode(), b"after")]


def test_a_cancelled_wait_cancels_the_query_and_leaves_the_connection_usable(
    postgres_url: str,
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any]) -> tuple[float, Any, Any]:
        await conn.execute("BEGIN")
        conn.pgconn.send_query(b"SELECT pg_sleep(30)")
        task = asyncio.ensure_future(results(conn))
        await asyncio.sleep(0.3)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - start
        status = conn.info.transaction_status
        await conn.execute("ROLLBACK")
        row = await (await conn.execute("SELECT 'usable'")).fetchone()
        return took, status, row

    took, status, row = _run(postgres_url, body)
    assert took < 10  # the query was cancelled on the server, not waited out
    assert status == TransactionStatus.INERROR  # cancelled: the caller rolls back
    assert row == ("usable",)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_connection_lost_during_the_wait_is_an_operational_error(
    postgres_url: str, loop_kind: str
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any]) -> None:
        pid = conn.info.backend_pid
        conn.pgconn.send_query(b"SELECT pg_sleep(30)")
        task = asyncio.ensure_future(results(conn))
        await asyncio.sleep(0.3)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            await task

    _run(postgres_url, body, loop_kind)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_connection_reset_during_the_wait_is_an_operational_error(
    postgres_url: str, loop_kind: str
) -> None:
    info = conninfo_to_dict(postgres_url)
    host, port = str(info.get("host", "127.0.0.1")), int(info.get("port", 5432))

    with Relay(port, upstream_host=host) as relay:  # down(): every open flow reset (RST)

        async def body(conn: psycopg.AsyncConnection[Any]) -> float:
            conn.pgconn.send_query(b"SELECT pg_sleep(30)")
            task = asyncio.ensure_future(results(conn))
            await asyncio.sleep(0.3)
            relay.down(1.0)
            start = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                await task
            return time.monotonic() - start

        took = _run(make_conninfo(postgres_url, host="127.0.0.1", port=relay.port), body, loop_kind)
    assert took < 5  # at once, not at the query's end
