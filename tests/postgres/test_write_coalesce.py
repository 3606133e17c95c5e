"""A statement that a later one of the same send overwrites whole is not sent
(``AsyncPgTx.send``, issue 22): a group of writes to one list stores the list's entry and the
namespace's statistics once per round trip instead of once per call. Within one transaction
nobody else sees the rows in between, so only what runs between the two could tell: a read of
the row, anything not known to be a blind write, or a savepoint that may undo the later one.
Each keeps the earlier statement; the answers and the stored rows stay those of the
statement-by-statement transaction."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import psycopg
import pytest

from botwire.store import Op
from botwire.store._sqltext import INSERT_ITEM_SQL, SAVE_WRITTEN_SQL, STORE_SQL, UNTOMB_SQL
from botwire_server.storage import _pg_prepare, _pg_write
from botwire_server.storage._pg_write import AsyncPgTx
from tests.support.postgres import async_writer

pytestmark = pytest.mark.postgres


@pytest.fixture
def outgoing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every query the event loop's writes send, after what is left out: a simple
    query's, or a pipeline's statements joined as one (a bound one as ``EXECUTE name``)."""
    texts: list[str] = []
    real = _pg_write._statements

    def spy(queue: list[tuple[Any, object]], dropped: list[int]) -> list[Any]:
        statements = real(queue, dropped)
        parts = [t.decode() if a is None else f"EXECUTE {t.decode()}" for t, a in statements]
        texts.append("; ".join(parts))
        return statements

    monkeypatch.setattr(_pg_write, "_statements", spy)
    return texts


def _entry(ns: str, key: str, value: str | None, version: int, length: int = 0) -> tuple[Any, ...]:
    # (ns, key, kind, value, version, created_at, updated_at, expires_at, bytes, length, head,
    # tail), as Ctx.store passes them
    return (
        ns,
        key,
        1 if value is None else 0,
        value,
        version,
        1.0,
        2.0,
        None,
        10,
        length,
        0,
        length,
    )


async def _tx(url: str, body: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        tx = AsyncPgTx(conn)
        tx.queue("BEGIN")
        got = await body(tx)
        tx.queue("COMMIT")
        await tx.send()
        row = await (
            await conn.execute(
                "SELECT value, version FROM bw_entries WHERE ns = %s AND key = 'k'", (got[0],)
            )
        ).fetchone()
        return got[1], row


@pytest.fixture
def url(postgres_url: str) -> str:
    from botwire_server.storage.postgres import PostgresStore

    PostgresStore(postgres_url).close()  # the schema
    return postgres_url


def test_only_the_last_of_blind_overwrites_is_sent(url: str, outgoing: list[str]) -> None:
    ns = f"co-{uuid.uuid4().hex[:8]}"

    async def body(tx: AsyncPgTx) -> tuple[str, list[Any]]:
        first = tx.queue(STORE_SQL, _entry(ns, "k", '"a"', 1))
        tx.queue(UNTOMB_SQL, (ns, "other"))
        tx.queue(INSERT_ITEM_SQL, (ns, "k2", 0, '"x"', 3))
        tx.queue(STORE_SQL, _entry(ns, "k2", None, 2, 1))
        last = tx.queue(STORE_SQL, _entry(ns, "k", '"b"', 3))
        read = tx.queue("SELECT value FROM bw_entries WHERE ns = ? AND key = ?", (ns, "k"))
        results = await tx.send()
        assert len(results) == read + 1 and results[first] is None and results[last] is None
        return ns, results[read]

    read, row = asyncio.run(_tx(url, body))
    assert read == [('"b"',)] and row == ('"b"', 3)
    sent = outgoing[0]
    assert sent.count("INSERT INTO bw_entries") == 2, sent  # k once, k2 once
    assert '"a"' not in sent


@pytest.mark.parametrize(
    "between",
    [
        pytest.param(("SELECT value FROM bw_entries WHERE ns = ? AND key = ?", True), id="read"),
        pytest.param(("SELECT count(*) FROM bw_entries WHERE ns = ?", False), id="any-other"),
    ],
)
def test_a_statement_that_may_read_the_row_keeps_the_earlier_write(
    url: str, outgoing: list[str], between: tuple[str, bool]
) -> None:
    ns = f"co-{uuid.uuid4().hex[:8]}"
    sql, keyed = between

    async def body(tx: AsyncPgTx) -> tuple[str, list[Any]]:
        tx.queue(STORE_SQL, _entry(ns, "k", '"a"', 1))
        seen = tx.queue(sql, (ns, "k") if keyed else (ns,))
        tx.queue(STORE_SQL, _entry(ns, "k", '"b"', 2))
        return ns, (await tx.send())[seen]

    read, row = asyncio.run(_tx(url, body))
    assert read == ([('"a"',)] if keyed else [(1,)]) and row == ('"b"', 2)
    assert outgoing[0].count("INSERT INTO bw_entries") == 2


@pytest.mark.parametrize(
    ("around", "kept", "stores"),
    [
        # rolled back to a savepoint set between them: the earlier one is what stays
        pytest.param(("", "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s"), ('"a"', 1), 2, id="undone"),
        # a group's first call runs in SAVEPOINT bw_req, released once applied: what it stored
        # stays, as the next call's write does, so the earlier one is left out
        pytest.param(
            ("SAVEPOINT bw_req", "RELEASE SAVEPOINT bw_req", ""), ('"b"', 2), 1, id="released"
        ),
    ],
)
def test_savepoints_between_two_overwrites(
    url: str, outgoing: list[str], around: tuple[str, str, str], kept: Any, stores: int
) -> None:
    ns = f"co-{uuid.uuid4().hex[:8]}"
    before, between, after = around

    async def body(tx: AsyncPgTx) -> tuple[str, None]:
        for step in (before, '"a"', between, '"b"', after):
            if step.startswith('"'):  # an overwrite: "a" at version 1, then "b" at 2
                tx.queue(STORE_SQL, _entry(ns, "k", step, 1 if step == '"a"' else 2))
            elif step:
                tx.queue(step)
        await tx.send()
        return ns, None

    _, row = asyncio.run(_tx(url, body))
    assert row == kept
    assert outgoing[0].count("INSERT INTO bw_entries") == stores


def test_statistics_saved_with_and_without_the_write_time_stay_apart(
    url: str, outgoing: list[str]
) -> None:
    """``written_at`` is set by one save and not the other: neither overwrites the other."""
    ns = f"co-{uuid.uuid4().hex[:8]}"

    async def body(tx: AsyncPgTx) -> tuple[str, None]:
        tx.queue(
            "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes) VALUES (?, 0, 0, 0, 0)",
            (ns,),
        )
        tx.queue(SAVE_WRITTEN_SQL, (1, 10, 0, 1, 0, 5.0, ns))
        tx.queue(SAVE_WRITTEN_SQL, (2, 20, 0, 2, 0, 6.0, ns))
        tx.queue(
            "UPDATE bw_namespaces SET keys = ?, bytes = ?, day = ?, writes = ?, records = ?"
            " WHERE ns = ?",
            (3, 30, 0, 3, 0, ns),
        )
        await tx.send()
        return ns, None

    asyncio.run(_tx(url, body))
    assert outgoing[0].count("written_at") == 1  # the first of the two is left out
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT keys, bytes, writes, written_at FROM bw_namespaces WHERE ns = %s", (ns,)
        ).fetchone()
    assert row == (3, 30, 3, 6.0)


@pytest.mark.usefixtures("joining")
def test_a_group_on_one_list_stores_its_entry_once_per_round_trip(
    postgres_url: str, outgoing: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 concurrent appends to one list and 40 increments of one key: the answers, versions,
    order and statistics of calls that each waited their turn, with the list's entry, the
    counter's and the statistics sent at most once per round trip."""
    ns = f"co-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(_pg_prepare, "HOT_AFTER", 10**9)  # plain statements: their text shows
    created: list[float] = []

    async def main() -> tuple[list[Any], Any, Any, Any]:
        async with async_writer(postgres_url) as (w, store):
            first = await w.batch(ns, [Op("append", "log", items=('"m-first"',))])
            created.append(store.get(ns, "log").created_at)
            appends = [w.batch(ns, [Op("append", "log", items=(f'"m{i}"',))]) for i in range(40)]
            incrs = [w.batch(ns, [Op("incr", "n", by=1)]) for _ in range(40)]
            results = [first, *await asyncio.gather(*appends, *incrs)]
            return results, store.get(ns, "log"), store.get(ns, "n"), store.usage(ns)

    results, log, n, usage = asyncio.run(main())
    lengths = sorted(r[0]["length"] for r in results[1:41])
    assert lengths == list(range(2, 42))
    assert sorted(r[0]["value"] for r in results[41:]) == list(range(1, 41))
    assert len({r[0]["version"] for r in results}) == 81
    by_version = [r[0]["length"] for r in sorted(results[:41], key=lambda r: r[0]["version"])]
    assert by_version == list(range(1, 42))
    assert log is not None and log.value[0] == "m-first" and len(log.value) == 41
    assert log.version == max(r[0]["version"] for r in results[:41])
    assert n is not None and n.value == 40
    assert n.version == max(r[0]["version"] for r in results[41:])
    assert log.created_at == created[0] < log.updated_at
    assert usage.keys == 2 and usage.writes_today == 81
    with psycopg.connect(postgres_url) as conn:
        (stored,) = conn.execute(
            "SELECT coalesce(sum(bytes), 0) FROM bw_entries WHERE ns = %s", (ns,)
        ).fetchone()  # type: ignore[misc]
    assert usage.bytes == stored
    assert not any("EXECUTE" in t for t in outgoing)
    for text in outgoing:
        for key in ("'log'", "'n'"):
            stores = [s for s in text.split("; ") if "bw_entries" in s and key in s]
            assert len([s for s in stores if s.startswith("INSERT")]) <= 1, text
        assert text.count("written_at") <= 1, text
    grouped = [t for t in outgoing if t.count("INSERT INTO bw_items") > 1]
    assert grouped, "no send carried two appends: the test did not group"
    print(json.dumps({"sends": len(outgoing), "grouped": len(grouped)}))
