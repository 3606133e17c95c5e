"""Retention policies in the embedded store (issue 18 item 4): set through the client, honoured
by ``Memory`` and ``AsyncMemory`` over one SQLite file, by another process sharing the file,
and an older file (schema 2) upgraded in place without losing a value."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from botwire import AsyncMemory, InvalidArgument, Memory, Policy
from botwire._clock import TestingClock
from botwire.store import SQLiteStore
from botwire.store._sqlite import SCHEMA_VERSION
from botwire.store._sqlitefile import SCHEMA


def test_policies_in_the_embedded_store(tmp_path: Path) -> None:
    clock = TestingClock()
    store = SQLiteStore(tmp_path / "m.db", clock=clock)
    try:
        m, other = Memory("agent", store=store), Memory("other", store=store)
        assert m.set_policy(default_ttl=30, max_list_len=2) == Policy(
            30.0, 2, None, ("default_ttl", "max_list_len")
        )
        # seconds are floats however read back (SQLite gave usage() the column's int)
        assert [type(p.default_ttl) for p in (m.policy(), m.usage().policy)] == [float, float]
        for memory in (m, other):
            memory.append("chat", "a", "b", "c")
            memory.set("note", 1)
        assert m.get("chat") == ["b", "c"] and other.get("chat") == ["a", "b", "c"]
        clock.advance(31)
        assert m.keys() == [] and other.keys() == ["chat", "note"]
        with pytest.raises(InvalidArgument, match="max_list_len"):
            m.set_policy(max_list_len=-1)
        assert m.policy().max_list_len == 2
    finally:
        store.close()


def test_async_memory_and_another_process_honour_the_policy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    async def main() -> Policy:
        async with AsyncMemory("shared", url=url) as am:
            await am.set_policy(max_list_len=3)
            await am.append("log", *range(10))
            assert await am.get("log") == [7, 8, 9]
            return await am.policy()

    assert asyncio.run(main()) == Policy(None, 3, None, ("max_list_len",))
    # a fresh process (a serverless invocation) on the same file: the policy is in the file
    code = (
        f"from botwire import Memory; m = Memory('shared', url={url!r}); "
        "m.append('log', 'x', max_len=100); print(m.get('log'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[8, 9, 'x']"


def test_a_schema_2_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in SCHEMA:  # the layout before retention (schema 2)
        conn.execute(statement)
    conn.execute("UPDATE bw_meta SET schema = 2, version = 10 WHERE id = 1")
    conn.execute(
        "INSERT INTO bw_entries (ns, key, kind, value, version, created_at, updated_at, bytes)"
        " VALUES ('old', 'k', 0, '\"kept\"', 5, 1.0, 1.0, 7)"
    )
    conn.execute("INSERT INTO bw_namespaces VALUES ('old', 1, 7, 0, 1)")
    conn.commit()
    conn.close()
    clock = TestingClock()
    store = SQLiteStore(path, clock=clock)
    try:
        m = Memory("old", store=store)
        assert m.get("k") == "kept" and m.usage().keys == 1
        assert m.policy() == Policy()
        m.set_policy(max_idle=60)  # the idle age counts from the upgrade
        clock.advance(30)
        store.purge_expired()
        assert m.get("k") == "kept"
        clock.advance(31)
        store.purge_expired()
        assert m.keys() == []
    finally:
        store.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT schema FROM bw_meta").fetchone()[0] == SCHEMA_VERSION
    finally:
        check.close()
    SQLiteStore(path).close()  # opening again changes nothing


def test_a_write_between_finding_and_clearing_an_idle_namespace_keeps_it(tmp_path: Path) -> None:
    """Housekeeping finds idle namespaces in a read, then clears each in a transaction of its
    own: a write landing in between must win (the idle age is checked again under the lock)."""
    clock = TestingClock()
    store = SQLiteStore(tmp_path / "race.db", clock=clock)
    try:
        m = Memory("racy", store=store)
        m.set("k", 1)
        m.set_policy(max_idle=10)
        clock.advance(11)
        with store._read() as tx:
            found = store.engine.idle_namespaces(tx, clock(), 100)
        assert found == ["racy"]
        m.set("k", 2)  # a write arrives after housekeeping looked
        cleared = store._transact(
            lambda tx: store.engine.clear_idle(tx, "racy", clock()), frees=True
        )
        assert cleared == 0 and m.get("k") == 2
    finally:
        store.close()
