"""A write wakes only the held polls that read under one of its keys' prefixes.

A held ``/changes`` poll re-reads the store each time it is woken. When every write to a
namespace woke all of its waiters, a read-only token holding the per-namespace limit of polls
on a prefix that matched nothing made each write cost one read per poll: 100 reads a write,
which slowed every other tenant of the server (docs/server.md, "What a waiter's read costs").
Now a write made by the server wakes the polls whose prefix one of its keys is under; the
``botwire_watch_wakes`` metric counts the wakes (each one read). A ``clear`` (any key) and
writes made elsewhere (another process, another replica) still wake every poll of the
namespace. Each case runs against a real server process, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.polls import hold_poll, poll_answer, still_held
from support.server import ServerProcess, running_server

from botwire import Memory

HELD = 10  # idle polls on a prefix no write below names


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    if request.param == "postgres":
        database: object = request.getfixturevalue("postgres_url")
    else:
        database = tmp_path / "wake.db"
    with running_server("--watch-hold", "30", database=database) as s:
        yield s


def _wakes(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return float(re.search(r"^botwire_watch_wakes (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def _scene(
    writes_to: ServerProcess, holds_on: ServerProcess
) -> Iterator[tuple[Memory, list[socket.socket], socket.socket]]:
    """A fresh namespace written through ``writes_to``, with :data:`HELD` polls under a prefix
    no write names and one under ``job/`` held on ``holds_on``."""
    ns = f"wake-{time.monotonic_ns()}"
    m = Memory(ns, url=writes_to.url)
    after = m.set("seed", 0)
    idle = [hold_poll(holds_on, ns, prefix="nothing/", after=after) for _ in range(HELD)]
    job = hold_poll(holds_on, ns, prefix="job/", after=after)
    try:
        yield m, idle, job
    finally:
        for sock in [*idle, job]:
            sock.close()
        m.close()


def test_writes_under_other_prefixes_wake_no_poll(server: ServerProcess) -> None:
    with _scene(server, server) as (m, idle, job):
        before = _wakes(server)
        for i in range(30):
            m.set(f"other/{i}", i)
        m.append("other/list", {"i": 1})
        m.set_many({"other/a": 1, "other/b": 2})
        time.sleep(0.3)
        # a poll that re-read would have answered nothing yet, so only the metric shows it
        assert _wakes(server) == before, "writes under other prefixes woke held polls"
        assert all(still_held(s) for s in [*idle, job])

        m.set_many({"other/c": 3, "job/done": True})  # one of the batch's keys is under job/
        found = poll_answer(job)
        assert [e["key"] for e in found["changes"]] == ["job/done"]  # type: ignore[union-attr]
        assert _wakes(server) == before + 1
        assert all(still_held(s) for s in idle)

        m.set("nothing/yet", 1)  # every idle poll is under this key's prefix: all answer
        for sock in idle:
            assert [e["key"] for e in poll_answer(sock)["changes"]] == ["nothing/yet"]  # type: ignore[union-attr]
        assert _wakes(server) == before + 1 + HELD


def test_a_clear_and_an_empty_prefix_wake_every_poll(server: ServerProcess) -> None:
    ns = f"wake-{time.monotonic_ns()}"
    m = Memory(ns, url=server.url)
    after = m.set("seed", 0)
    everything = hold_poll(server, ns, prefix="", after=after)
    idle = [hold_poll(server, ns, prefix="nothing/", after=after) for _ in range(3)]
    try:
        m.set("anything", 1)
        assert [e["key"] for e in poll_answer(everything)["changes"]] == ["anything"]  # type: ignore[union-attr]
        assert all(still_held(s) for s in idle)
        before = _wakes(server)
        m.clear()  # the keys it removes are not named: every poll reads again
        time.sleep(0.3)
        assert _wakes(server) == before + len(idle)
        assert all(still_held(s) for s in idle)  # they read, found nothing of theirs, hold on
    finally:
        for sock in [everything, *idle]:
            sock.close()
        m.close()


def test_another_process_on_the_file_still_wakes_a_poll(tmp_path: Path) -> None:
    """The server's own writes no longer make its SQLite poller wake anyone; another
    process's commit to the same file still does (the poller reads ``foreign_version``)."""
    from botwire.store import SQLiteStore

    path = tmp_path / "shared.db"
    with running_server("--watch-hold", "30", database=path) as server:
        ns = f"wake-{time.monotonic_ns()}"
        m = Memory(ns, url=server.url)
        after = m.set("seed", 0)
        job = hold_poll(server, ns, prefix="job/", after=after)
        store = SQLiteStore(path)
        try:
            started = time.monotonic()
            Memory(ns, store=store).set("job/elsewhere", 1)  # not through the server
            found = poll_answer(job, timeout=20)
            assert [e["key"] for e in found["changes"]] == ["job/elsewhere"]  # type: ignore[union-attr]
            assert time.monotonic() - started < 10, "woken at the hold's end, not by the poller"
        finally:
            job.close()
            store.close()
            m.close()


@pytest.mark.postgres
def test_another_replicas_writes_wake_only_the_polls_under_their_keys(postgres_url: str) -> None:
    """Two replicas on one database: the writes made through one reach the other's waiters by
    ``NOTIFY`` with hints of their keys, so there too only the polls under a written key wake;
    a write of more keys than a notification hints at wakes them all."""
    with (
        running_server("--watch-hold", "30", database=postgres_url) as one,
        running_server("--watch-hold", "30", database=postgres_url) as two,
        _scene(one, two) as (writer, idle, job),
    ):
        time.sleep(1.0)  # both listeners are up (their start-up probes woke everyone)
        before = _wakes(two)
        for i in range(20):
            writer.set(f"other/{i} with / and %", i)
        time.sleep(0.5)
        assert _wakes(two) == before, "another replica's writes woke polls not under them"
        writer.set_many({"other/z": 1, "job/done": True})
        found = poll_answer(job)
        assert [e["key"] for e in found["changes"]] == ["job/done"]
        assert all(still_held(s) for s in idle)
        writer.set_many({f"many/{i}": i for i in range(40)})  # more keys than hints
        time.sleep(0.5)
        assert _wakes(two) >= before + 1 + HELD
        assert all(still_held(s) for s in idle)  # they read, found nothing, hold on
