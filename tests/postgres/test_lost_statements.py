"""psycopg prepares a statement it has run five times on a connection and remembers it by name.
If the session loses it behind psycopg's back (a reset by a pooler or an operator), the next
use fails with ``InvalidSqlStatementName``. No statement ran, so every path (the sync store's
reads, read batches and writes; the event loop's reads) answers anyway: the connection is
dropped and the call runs once more on a fresh one. The event loop's writes prepare their own
statements (``_pg_prepare``): one lost is prepared again and the write runs once more. And
botwire's own writes must not make psycopg lose one (the last test: how the random batches of
``test_write_prefetch`` met it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.postgres import with_async_reader

from botwire.store import Op
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

MakeStore = Callable[..., PostgresStore]
WARM = 8  # more uses than psycopg's prepare_threshold (5)


def _forget_behind_psycopg(conn: Any) -> None:
    """Drop the session's prepared statements without psycopg knowing (libpq directly)."""
    result = conn.pgconn.exec_(b"DEALLOCATE ALL")
    assert result.status == 1  # COMMAND_OK


CALLS: dict[str, Callable[[PostgresStore, str], Any]] = {
    "get": lambda store, ns: store.get(ns, "k").value,  # type: ignore[union-attr]
    "read batch": lambda store, ns: store.batch(ns, [Op("get", "k"), Op("get", "k")])[0]["value"],
    "write": lambda store, ns: store.batch(ns, [Op("incr", "n")])[0]["value"],
}


@pytest.mark.parametrize("call", list(CALLS))
def test_the_sync_store_answers_after_its_session_lost_the_statements(
    make_store: MakeStore, ns: str, call: str
) -> None:
    store = make_store(min_size=1, max_size=1)
    store.batch(ns, [Op("set", "k", value="7")])
    run = CALLS[call]
    for _ in range(WARM):
        first = run(store, ns)
    with store._pool.connection() as conn:
        _forget_behind_psycopg(conn)
    again = run(store, ns)
    assert again == (first + 1 if call == "write" else first)
    # and the store goes on working, the statements prepared afresh
    for _ in range(WARM):
        run(store, ns)
    found = store.get(ns, "n")
    assert found is None or found.value == (2 * WARM + 1 if call == "write" else None)


def test_the_event_loop_reads_answer_after_their_session_lost_the_statements(
    make_store: MakeStore, ns: str
) -> None:
    store = make_store(min_size=1, max_size=1, read_max_size=1)
    store.batch(ns, [Op("set", "k", value="7")])

    async def body(reader: Any) -> list[Any]:
        for _ in range(WARM):
            await reader.get(ns, "k")
        conn = await reader._pool.getconn()
        _forget_behind_psycopg(conn)
        await reader._pool.putconn(conn)
        found = [await reader.get(ns, "k") for _ in range(WARM)]
        return [entry.value for entry in found]

    assert with_async_reader(store, body) == [7] * WARM


#: a statement of the event loop's writes, by where it is sent: with the lock (the first round
#: trip, before anything is written) or with ``COMMIT`` (the statistics' update)
SENT_WITH = {
    "the lock": "INSERT INTO bw_namespaces",
    "COMMIT": "UPDATE bw_namespaces",
}


@pytest.mark.parametrize("sent_with", list(SENT_WITH))
def test_the_event_loop_writes_answer_after_their_session_lost_a_statement(
    make_store: MakeStore, ns: str, sent_with: str
) -> None:
    """Even when the statement lost rides with ``COMMIT``: it fails, PostgreSQL skips the rest
    of that simple query, so the ``COMMIT`` never ran and running the write again applies it
    once, on the same connection, its statements prepared again."""
    store = make_store(min_size=1, max_size=1, async_writes=True)

    async def body(reader: Any) -> list[Any]:
        for _ in range(WARM):  # the writes' statements are prepared on the one connection
            await reader.batch(ns, [Op("incr", "n")])
        conn = await reader._wpool.getconn()
        backend = conn.info.backend_pid
        names = reader.prepared._on[conn]
        lost = [name for sql, name in names.items() if sql.startswith(SENT_WITH[sent_with])]
        assert len(lost) == 1, names
        result = conn.pgconn.exec_(f"DEALLOCATE {lost[0]}".encode())  # behind botwire's back
        assert result.status == 1  # COMMAND_OK
        await reader._wpool.putconn(conn)
        answers = [(await reader.batch(ns, [Op("incr", "n")]))[0]["value"] for _ in range(3)]
        conn = await reader._wpool.getconn()
        assert conn.info.backend_pid == backend  # the connection was kept, prepared again
        await reader._wpool.putconn(conn)
        return answers

    assert with_async_reader(store, body) == [WARM + 1, WARM + 2, WARM + 3]
    assert store.get(ns, "n").value == WARM + 3  # type: ignore[union-attr]


@pytest.mark.parametrize("max_len", [None, 2])
def test_a_refused_op_does_not_cost_the_session_its_statements(
    make_store: MakeStore, ns: str, max_len: int | None
) -> None:
    """Found by the random batches (``test_write_prefetch``). In a non-atomic batch a refused
    op rolls back to its savepoint; psycopg then owes the session a ``DEALLOCATE ALL``, sent
    after its next statement. When the next op read its key afresh (a fetch) and went on to
    insert list items with ``executemany``, which prepares at once, the owed reset dropped that
    new statement: the next append failed with ``InvalidSqlStatementName`` (then retried on a
    fresh connection). Every answer must be right and the one connection kept."""
    store = make_store(min_size=1, max_size=1)
    store.batch(ns, [Op("set", "s", value='"text"')])
    for _ in range(WARM):  # psycopg has statements prepared on the connection
        store.get(ns, "s")
    with store._pool.connection() as conn:
        backend = conn.info.backend_pid
    answers = store.batch(
        ns,
        [
            Op("append", "b", items=("1",)),
            Op("append", "s", items=("1",)),  # refused: s is not a list
            Op("append", "b", items=("2", "3"), max_len=max_len),  # b read again: a fetch
        ],
        atomic=False,
    )
    assert ["error" in a for a in answers] == [False, True, False]
    for n in range(WARM):
        store.batch(ns, [Op("append", "b", items=(str(n), str(n)))])
    with store._pool.connection() as conn:
        assert conn.info.backend_pid == backend  # no statement went missing
    found = store.get(ns, "b")
    assert found is not None
    assert len(found.value) == (2 if max_len else 3) + 2 * WARM
