"""A write wakes only the held polls that read under one of its keys' prefixes.

A held ``/changes`` poll re-reads the store each time it is woken. When every write to a
namespace woke all of its waiters, a read-only token holding the per-namespace limit of polls
on a prefix that matched nothing made each write cost one read per poll: 100 reads a write,
which slowed every other tenant of the server (docs/server.md, "What a waiter's read costs").
Now a write wakes the polls whose prefix one of its keys is under, whether this server, another
replica (hints in the NOTIFY) or another process on the SQLite file (the poller reads the keys
that changed) made it; the ``botwire_watch_wakes_total`` metric counts the wakes (each one
read). A ``clear`` (any key) still wakes every poll of the namespace, and so do the store's own
retention changes, also those its in-request purge makes. Each case runs against real server
processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.polls import hold_poll, poll_answer, still_held, wakes
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
        before = wakes(server)
        for i in range(30):
            m.set(f"other/{i}", i)
        m.append("other/list", {"i": 1})
        m.set_many({"other/a": 1, "other/b": 2})
        time.sleep(0.3)
        # a poll that re-read would have answered nothing yet, so only the metric shows it
        assert wakes(server) == before, "writes under other prefixes woke held polls"
        assert all(still_held(s) for s in [*idle, job])

        m.set_many({"other/c": 3, "job/done": True})  # one of the batch's keys is under job/
        found = poll_answer(job)
        assert [e["key"] for e in found["changes"]] == ["job/done"]  # type: ignore[union-attr]
        assert wakes(server) == before + 1
        assert all(still_held(s) for s in idle)

        m.set("nothing/yet", 1)  # every idle poll is under this key's prefix: all answer
        for sock in idle:
            assert [e["key"] for e in poll_answer(sock)["changes"]] == ["nothing/yet"]  # type: ignore[union-attr]
        assert wakes(server) == before + 1 + HELD


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
        before = wakes(server)
        m.clear()  # the keys it removes are not named: every poll reads again
        time.sleep(0.3)
        assert wakes(server) == before + len(idle)
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


def _only_jobwakes(
    writer: Memory, server: ServerProcess, idle: list[socket.socket], job: socket.socket
) -> float:
    """Writes under other prefixes (a list's append among them) wake none of ``server``'s
    polls; then a batch with one key under ``job/`` answers that poll alone. Returns the wakes
    counted before."""
    before = wakes(server)
    for i in range(20):
        writer.set(f"other/{i} with / and %", i)
    writer.append("other/list", 1, 2)
    time.sleep(0.5)
    assert wakes(server) == before, "writes under other prefixes woke polls not under them"
    writer.set_many({"other/z": 1, "job/done": True})
    found = poll_answer(job)
    assert [e["key"] for e in found["changes"]] == ["job/done"]
    assert all(still_held(s) for s in idle)
    return before


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
        before = _only_jobwakes(writer, two, idle, job)
        writer.set_many({f"many/{i}": i for i in range(40)})  # more keys than hints
        time.sleep(0.5)
        assert wakes(two) >= before + 1 + HELD
        assert all(still_held(s) for s in idle)  # they read, found nothing, hold on


@pytest.mark.postgres
def test_a_writer_without_a_server_wakes_only_the_polls_under_its_keys(postgres_url: str) -> None:
    """An app writing with ``PostgresStore`` in its own process (no server) sends the same
    hints in its ``NOTIFY`` as a replica: a server's polls under other prefixes stay asleep
    (before, its notification named the namespace alone and woke every poll of it)."""
    from botwire_server.storage.postgres import PostgresStore

    with running_server("--watch-hold", "30", database=postgres_url) as server:
        ns = f"direct-{time.monotonic_ns()}"
        store = PostgresStore(postgres_url)
        with Memory(ns, store=store) as writer:
            after = writer.set("seed", 0)
            idle = [hold_poll(server, ns, prefix="nothing/", after=after) for _ in range(HELD)]
            job = hold_poll(server, ns, prefix="job/", after=after)
            try:
                time.sleep(1.0)  # the server's listener is up (its probe woke everyone)
                before = _only_jobwakes(writer, server, idle, job)
                writer.clear()  # any key: every poll reads
                time.sleep(0.5)
                assert wakes(server) >= before + 1 + HELD
            finally:
                for sock in [*idle, job]:
                    sock.close()
        store.close()


def _answered_within(sock: socket.socket, seconds: float) -> list[tuple[str, bool]]:
    """The held poll's changes, which must come within ``seconds`` (its hold is 30 s)."""
    started = time.monotonic()
    found = poll_answer(sock, timeout=40)
    waited = time.monotonic() - started
    assert waited < seconds, f"answered after {waited:.1f} s: at its hold's end, not woken"
    return [(c["key"], bool(c.get("deleted"))) for c in found["changes"]]


def _writes_elsewhere(server: ServerProcess, count: int = 600) -> None:
    """More write transactions than the SQLite store's in-request purge waits for (512)."""
    with Memory(f"busy-{time.monotonic_ns()}", url=server.url) as busy:
        for i in range(count):
            busy.set(f"k{i}", i)


def test_the_purge_a_write_runs_wakes_what_it_clears_or_trims(tmp_path: Path) -> None:
    """Every 512 writes the SQLite store purges inside a request, applying retention: it may
    clear an idle namespace or trim a list, on the server's own connection, where no write's
    keys name them."""
    with running_server("--watch-hold", "30", database=tmp_path / "purge.db") as server:
        idle = Memory(f"idle-{time.monotonic_ns()}", url=server.url)
        idle.set_policy(max_idle=1)
        after = idle.set("doc", 1)
        chat = Memory(f"chat-{time.monotonic_ns()}", url=server.url)
        chat.append("chat", *range(10))
        chat.set_policy(max_list_len=3)
        cleared = hold_poll(server, idle.namespace, after=after)
        trimmed = hold_poll(server, chat.namespace, prefix="chat", after=chat.entry("chat").version)  # type: ignore[union-attr]
        try:
            time.sleep(1.5)  # idle past its max_idle
            _writes_elsewhere(server)
            assert _answered_within(cleared, 10) == [("doc", True)]
            assert _answered_within(trimmed, 10) == [("chat", False)]
            assert chat.get("chat") == [7, 8, 9]
        finally:
            cleared.close()
            trimmed.close()
            idle.close()
            chat.close()


def test_a_batch_of_checks_that_removes_an_expired_keywakes(server: ServerProcess) -> None:
    """A ``check`` removes its key when it has expired (a tombstone), even in a batch of
    checks alone, which needs only read permission."""
    ns = f"check-{time.monotonic_ns()}"
    with Memory(ns, url=server.url) as m:
        after = m.set("job/x", 1, ttl=1)
        job = hold_poll(server, ns, prefix="job/", after=after)
        try:
            time.sleep(1.2)
            answer = httpx.post(
                f"{server.url}/v1/namespaces/{ns}/batch",
                json={"ops": [{"op": "check", "key": "job/x", "version": None}]},
            )
            assert answer.status_code == 200, answer.text
            assert _answered_within(job, 10) == [("job/x", True)]
        finally:
            job.close()


def test_another_process_writing_wakes_no_poll_another_namespace_left_alone(
    tmp_path: Path,
) -> None:
    """Two servers on one SQLite file. Another process's commit makes the poller read which
    keys changed in the namespaces it watches (``changed_keys``): tenant B's own writes,
    already matched by key, must not wake B's polls again because tenant A writes elsewhere."""
    path = tmp_path / "two.db"
    with (
        running_server("--watch-hold", "30", database=path) as one,
        running_server("--watch-hold", "30", database=path) as two,
        _scene(one, one) as (b, idle, job),
        Memory(f"tenant-a-{time.monotonic_ns()}", url=two.url) as a,
    ):
        a.set("first", 0)  # the poller's first look at B's namespace wakes its polls once
        time.sleep(0.3)
        before = wakes(one)
        for i in range(40):
            a.set(f"k{i}", i)  # another process's commits: the poller looks each time
            b.set(f"other/{i}", i)
            time.sleep(0.03)
        time.sleep(0.3)
        assert wakes(one) == before, "tenant A's writes woke tenant B's idle polls"
        assert all(still_held(s) for s in [*idle, job])
        Memory(b.namespace, url=two.url).set("job/elsewhere", 1)  # through the other process
        assert _answered_within(job, 10) == [("job/elsewhere", False)]
