"""psycopg prepares a statement it has run five times on a connection and remembers it by name.
If the session loses it behind psycopg's back (a reset by a pooler or an operator, or psycopg's
own bookkeeping going wrong in pipeline mode around a ``ROLLBACK``, as the random batches of
``test_write_prefetch`` once met), the next use fails with ``InvalidSqlStatementName``. No
statement ran, so every path (the sync store's reads, read batches and writes; the event loop's
reads) answers anyway: the connection is dropped and the call runs once more on a fresh one.
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
