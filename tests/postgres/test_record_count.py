"""A namespace's idempotency records are counted with its statistics (``bw_namespaces.records``,
issue 22), so a keyed write counts nothing and a write at the 1,000-record cap reads only the
oldest record. The count must equal the records kept after every change that adds or drops
them (keyed writes, replays, deletes that forget records, large answers, the cap, clearing the
namespace, the daily purge), on SQLite, the sync ``PostgresStore`` and the server's event-loop
writer; a count that is unknown (after the upgrade) or wrong (left by an older replica during a
rolling upgrade) must heal, and the upgrade itself must keep every record.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from botwire.store import Op, SQLiteStore
from botwire.testing import Clock
from botwire_server.storage._pg_schema import RECORDS_SCHEMA
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

CAP = 1000  # botwire.store._sqlbase.MAX_IDEMPOTENCY_RECORDS, as a literal
DAY = 86400.0


class Target:
    """One store and a way to write with it and to read its tables directly."""

    def __init__(self, kind: str, tmp: Path, postgres_url: str) -> None:
        self.kind, self.clock = kind, Clock()
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sqlite":
            self.path = tmp / f"records-{uuid.uuid4().hex[:6]}.db"
            self.store: Any = SQLiteStore(self.path, clock=self.clock)
        else:
            self.url = postgres_url
            self.store = PostgresStore(postgres_url, clock=self.clock, async_writes=True)
            if kind == "event loop":
                self.loop = asyncio.new_event_loop()
                self.writer = self.store.async_reader()
                self.loop.run_until_complete(self.writer.open())

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.writer.close())
            self.loop.close()
        self.store.close()

    def batch(self, ns: str, ops: list[Op], ikey: str | None = None, **kw: Any) -> Any:
        if self.loop is not None:
            return self.loop.run_until_complete(
                self.writer.batch(ns, ops, idempotency_key=ikey, **kw)
            )
        return self.store.batch(ns, ops, idempotency_key=ikey, **kw)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.path) as conn:
                return conn.execute(statement.replace("%s", "?"), params).fetchall()
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def counts(self, ns: str) -> tuple[Any, int]:
        """(the statistics' count, the records really kept)."""
        kept = self.sql("SELECT records FROM bw_namespaces WHERE ns = %s", (ns,))
        real = self.sql("SELECT count(*) FROM bw_idempotency WHERE ns = %s", (ns,))
        return (kept[0][0] if kept else None), int(real[0][0])


@pytest.fixture(params=["sqlite", "postgres", "event loop"])
def target(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[Target]:
    t = Target(request.param, tmp_path, postgres_url)
    yield t
    t.close()


def _ns() -> str:
    return f"records-{uuid.uuid4().hex[:10]}"


def test_count_follows_every_change(target: Target) -> None:
    ns = _ns()
    steps: list[tuple[str, Callable[[], Any]]] = [
        (
            "five keyed sets",
            lambda: [
                target.batch(ns, [Op("set", f"k{i % 2}", value=str(i))], f"set-{i}")
                for i in range(5)
            ],
        ),
        ("a replay adds none", lambda: target.batch(ns, [Op("set", "k0", value="4")], "set-4")),
        (
            "keyed pops of a list",
            lambda: [
                target.batch(ns, [Op("append", "l", items=('"a"', '"b"', '"c"'))], "fill"),
                target.batch(ns, [Op("pop", "l")], "pop-1"),
                target.batch(ns, [Op("pop", "l")], "pop-2"),
            ],
        ),
        # the pops' records hold the list's values: deleting it forgets them (not the others)
        ("a delete forgets its key's records", lambda: target.batch(ns, [Op("delete", "l")])),
        (
            "a keyed delete forgets them too",
            lambda: [
                target.batch(ns, [Op("incr", "n", by=1)], "incr-1"),
                target.batch(ns, [Op("delete", "n")], "delete-n"),
            ],
        ),
        # an answer over 4 KiB makes the write count its records (and their bytes) itself
        (
            "a large answer",
            lambda: [
                target.batch(ns, [Op("set", "big", value='"' + "x" * 6000 + '"')]),
                target.batch(ns, [Op("incr", "m", by=1), Op("get", "big")], "large"),
            ],
        ),
        (
            "a refused op in a non-atomic keyed batch",
            lambda: target.batch(
                ns,
                [Op("set", "k0", value="1", if_absent=True), Op("incr", "m", by=1)],
                "partly",
                atomic=False,
            ),
        ),
    ]
    for name, step in steps:
        step()
        kept, real = target.counts(ns)
        assert kept == real, (name, kept, real)
    # 5 sets, a fill and 2 pops, the pops forgotten, an incr forgotten by its keyed delete
    assert real == 5 + 3 - 2 + 1 - 1 + 1 + 1 + 1
    target.store.clear(ns)
    assert target.counts(ns) == (0, 0)
    target.batch(ns, [Op("set", "after", value="1")], "after-clear")
    assert target.counts(ns) == (1, 1)


def test_the_cap_keeps_the_newest_records_and_their_count(target: Target) -> None:
    ns = _ns()
    for i in range(CAP + 10):
        target.batch(ns, [Op("incr", "n", by=1)], f"k{i}")
    assert target.counts(ns) == (CAP, CAP)
    kept = {r[0] for r in target.sql("SELECT ikey FROM bw_idempotency WHERE ns = %s", (ns,))}
    assert kept == {f"k{i}" for i in range(10, CAP + 10)}
    # the newest replays; the oldest was dropped, so its retry applies anew
    assert target.batch(ns, [Op("incr", "n", by=1)], f"k{CAP + 9}")[0]["value"] == CAP + 10
    assert target.batch(ns, [Op("incr", "n", by=1)], "k0")[0]["value"] == CAP + 11
    assert target.counts(ns) == (CAP, CAP)
    # the bytes freed with the dropped records: usage equals the data plus the records kept
    octets = (
        "length(CAST(response AS BLOB))" if target.kind == "sqlite" else ("octet_length(response)")
    )
    records = target.sql(
        f"SELECT coalesce(sum({octets}), 0) FROM bw_idempotency WHERE ns = %s", (ns,)
    )[0][0]
    entries = target.sql("SELECT sum(bytes) FROM bw_entries WHERE ns = %s", (ns,))[0][0]
    assert target.store.usage(ns).bytes == int(records) + int(entries)


def test_an_unknown_or_wrong_count_heals(target: Target) -> None:
    ns = _ns()
    for i in range(4):
        target.batch(ns, [Op("incr", "n", by=1)], f"k{i}")
    # unknown (every namespace right after the upgrade): the next keyed write counts once
    target.sql("UPDATE bw_namespaces SET records = NULL WHERE ns = %s", (ns,))
    target.batch(ns, [Op("incr", "n", by=1)], "k4")
    assert target.counts(ns) == (5, 5)
    # wrong: an older replica kept a record without counting it
    target.sql(
        "INSERT INTO bw_idempotency (ns, ikey, fingerprint, created_at, response)"
        " VALUES (%s, 'old-replica', NULL, %s, '[]')",
        (ns, target.clock() - 10),
    )
    assert target.counts(ns) == (5, 6)
    # the daily purge drops day-old records and has the count made afresh
    target.clock.advance(DAY + 60)
    target.batch(ns, [Op("incr", "n", by=1)], "fresh")
    target.store.purge_expired()
    kept, real = target.counts(ns)
    assert real == 1 and kept in (None, 1), (kept, real)
    target.batch(ns, [Op("incr", "n", by=1)], "fresh-2")
    assert target.counts(ns) == (2, 2)


def test_upgrade_adds_the_count_and_keeps_every_record(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    """A store of the schema before (no ``records``, no per-namespace age index) is upgraded at
    open: every record stays, the count is unknown until the next keyed write counts it."""
    sqlite_path = tmp_path / "old.db"
    stores: list[tuple[str, Callable[[], Any], Callable[[str], list[Any]]]] = []

    def sqlite_sql(statement: str) -> list[Any]:
        with sqlite3.connect(sqlite_path) as conn:
            return conn.execute(statement).fetchall()

    def pg_sql(statement: str) -> list[Any]:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    stores.append(("sqlite", lambda: SQLiteStore(sqlite_path), sqlite_sql))
    stores.append(("postgres", lambda: PostgresStore(fresh_postgres_url), pg_sql))
    for name, make, sql in stores:
        with contextlib.closing(make()) as store:
            for i in range(7):
                store.batch("old", [Op("incr", "n", by=1)], idempotency_key=f"k{i}")
        old_schema = 4 if name == "sqlite" else RECORDS_SCHEMA - 1
        sql("ALTER TABLE bw_namespaces DROP COLUMN records")
        sql("DROP INDEX bw_idempotency_ns_age")
        sql(f"UPDATE bw_meta SET schema = {old_schema}")
        with contextlib.closing(make()) as store:
            assert sql("SELECT records FROM bw_namespaces WHERE ns = 'old'") == [(None,)], name
            assert sql("SELECT count(*) FROM bw_idempotency WHERE ns = 'old'") == [(7,)], name
            # a retry from before the upgrade still replays
            assert (
                store.batch("old", [Op("incr", "n", by=1)], idempotency_key="k6")[0]["value"] == 7
            )
            store.batch("old", [Op("incr", "n", by=1)], idempotency_key="k7")
            assert sql("SELECT records FROM bw_namespaces WHERE ns = 'old'") == [(8,)], name
        indexes = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if name == "sqlite"
            else "SELECT indexname FROM pg_indexes"
        )
        assert ("bw_idempotency_ns_age",) in sql(indexes), name
