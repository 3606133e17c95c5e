"""A watch on ``PostgresStore`` used without a server waits on LISTEN, not by polling
(``storage/_pg_watch.py``, ``storage/_pg_listen.py``).

Each test pushes the store's re-read without a notification (``WATCH_BACKSTOP``) past its
hold, so only what the test is about can wake the waiter before the hold ends: a write of this
store, a notification after the listener lost its connection, a fork's own listener. "Woken"
means the wait returned the change before half of its hold (never a timing claim: a waiter
that nothing woke returns only at its end). The hand-off between processes, and the count of
reads it takes: ``tests/watch/test_handoff.py``; behind PgBouncer: ``test_pgbouncer.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from support.forks import run_forked

from botwire import InvalidArgument, Memory, Unavailable
from botwire_server.storage import _pg_listen, _pg_watch
from botwire_server.storage.postgres import PostgresStore

from .conftest import MakeStore

pytestmark = pytest.mark.postgres

HOLD = 20.0


@pytest.fixture(autouse=True)
def no_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pg_watch, "WATCH_BACKSTOP", 3 * HOLD)


def _until(check: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.01)


class Waiter:
    """``memory.watch(key, after=...)`` in a thread; :meth:`result` waits for its answer."""

    def __init__(self, memory: Memory, key: str, after: int) -> None:
        self.answer: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(memory, key, after))
        self.started = time.monotonic()
        self._thread.start()

    def _run(self, memory: Memory, key: str, after: int) -> None:
        try:
            self.answer["entry"] = memory.watch(key, after=after, timeout=HOLD)
        except BaseException as exc:  # reported by result()
            self.answer["error"] = exc
        self.answer["at"] = time.monotonic()

    def result(self) -> tuple[Any, float]:
        """The entry the watch returned and the seconds it waited."""
        self._thread.join(HOLD + 15)
        assert not self._thread.is_alive(), "the watch never returned"
        if "error" in self.answer:
            raise self.answer["error"]
        return self.answer["entry"], self.answer["at"] - self.started


def _listening(store: PostgresStore) -> None:
    _until(lambda: store._wakes.state == "listening", "the store's listener is listening")


def _woken(waiter: Waiter, value: Any) -> float:
    entry, waited = waiter.result()
    assert entry is not None and entry.value == value, entry
    assert waited < HOLD / 2, f"not woken: the watch returned at its hold's end ({waited} s)"
    return waited


def test_another_process_write_wakes_the_wait(make_store: MakeStore, ns: str) -> None:
    """A write by another store (its own connections and notify) wakes a waiting watch; the
    store that waited started exactly one listener, which the next waits reuse."""
    waiting, writing = make_store(max_size=2), make_store(max_size=2)
    memory, writer = Memory(ns, store=waiting), Memory(ns, store=writing)
    for i in range(3):
        after = writer.set("k", i)
        waiter = Waiter(memory, "k", after)
        _listening(waiting)
        time.sleep(0.2)  # the waiter is asleep by now
        writer.set("k", i + 100)
        _woken(waiter, i + 100)
    listeners = [t for t in threading.enumerate() if t.name == "botwire-store-listen"]
    assert len(listeners) == 1, listeners


def test_this_store_wakes_its_own_waiters_without_a_notify(make_store: MakeStore, ns: str) -> None:
    """``notify=False`` (a server's setting) sends no notification, so only the store's own
    wake-up after its commit can end the wait early."""
    store = make_store(notify=False, max_size=3)
    memory = Memory(ns, store=store)
    after = memory.set("k", 0)
    waiter = Waiter(memory, "k", after)
    _listening(store)
    time.sleep(0.2)
    memory.set("k", 1)
    _woken(waiter, 1)


def test_a_quiet_wait_ends_at_its_time_with_nothing(make_store: MakeStore, ns: str) -> None:
    store = make_store()
    after = Memory(ns, store=store).set("k", 0)
    start = time.monotonic()
    found = store.changes(ns, prefix="k", after=after, wait=0.5)
    assert found.entries == [] and found.version >= after
    assert time.monotonic() - start >= 0.5


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_lost_listener_connection_loses_no_wake_up(
    make_store: MakeStore, postgres_url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener's session is ended (a failover, an idle-session killer) while a watch
    waits, and a write lands before it has reconnected: the reconnect wakes every waiter to
    re-read, so the write is seen; the new connection then carries the next wake-ups."""
    monkeypatch.setattr(_pg_listen, "RECONNECT_DELAY", 1.0)  # room for the write, in the gap
    waiting, writing = make_store(max_size=2), make_store(max_size=2)
    memory, writer = Memory(ns, store=waiting), Memory(ns, store=writing)
    after = writer.set("k", 0)
    waiter = Waiter(memory, "k", after)
    _listening(waiting)
    listener = waiting._wakes.listener
    assert listener is not None
    first = listener.backend_pid
    time.sleep(0.2)  # the waiter is asleep on the listener by now
    _terminate(postgres_url, first)
    _until(lambda: listener.backend_pid == 0, "the listener saw its connection end")
    writer.set("k", 1)  # its notification reaches no one: the listener has no session
    _woken(waiter, 1)
    _until(lambda: listener.backend_pid not in (0, first), "the listener reconnected")
    waiter = Waiter(memory, "k", writer.entry("k").version)  # type: ignore[union-attr]
    time.sleep(0.2)
    writer.set("k", 2)
    _woken(waiter, 2)


def test_close_stops_the_listener_and_no_wait_starts_another(
    make_store: MakeStore, ns: str
) -> None:
    store = make_store()
    memory = Memory(ns, store=store)
    after = memory.set("k", 0)
    assert store.changes(ns, after=after, wait=0.05).entries == []
    _listening(store)
    listener = store._wakes.listener
    assert listener is not None
    store.close()
    _until(lambda: not listener._thread.is_alive(), "the listener thread ended")
    with pytest.raises(Unavailable, match="already closed"):
        store.changes(ns, after=after, wait=0.05)
    assert store._wakes.listener is listener and store._wakes.state == "closed"


def _forked_waiter(memory: Memory, index: int, results: Any) -> None:
    """In a forked child: wait for the parent's write with the store the parent built."""
    try:
        start = time.monotonic()
        entry = memory.watch(f"child-{index}", after=0, timeout=HOLD)
        woken = time.monotonic() - start < HOLD / 2  # else it re-read at its hold's end
        results.put((index, (entry.value if entry else None, woken), None))
    except BaseException as exc:
        results.put((index, None, repr(exc)))


def test_forked_children_listen_on_their_own_and_spare_the_parents(
    make_store: MakeStore, ns: str
) -> None:
    """A store that listened in the parent, then forked (``multiprocessing`` with fork): each
    child's watch starts its own listener and is woken by the parent's write; the parent's
    listener keeps its session (a child closing it would end it) and still wakes the parent."""
    store = make_store(max_size=3)
    memory = Memory(ns, store=store)
    assert store.changes(ns, after=memory.set("warm", 1), wait=0.05).entries == []
    _listening(store)
    listener = store._wakes.listener
    assert listener is not None
    parent_pid = listener.backend_pid

    def write_for_children() -> None:
        time.sleep(1.5)  # the children wait by now
        for i in range(3):
            memory.set(f"child-{i}", f"for {i}")

    results = run_forked(_forked_waiter, (memory,), 3, while_running=write_for_children)
    assert sorted(r[:2] for r in results) == [(i, (f"for {i}", True)) for i in range(3)], results
    assert listener.backend_pid == parent_pid and listener._thread.is_alive()
    after = memory.set("k", 0)
    waiter = Waiter(memory, "k", after)
    time.sleep(0.2)
    Memory(ns, store=make_store(max_size=1)).set("k", 1)  # another store: only LISTEN wakes
    _woken(waiter, 1)


@pytest.mark.parametrize("url", ["http://db:8765", "db.example.com", "sqlite:///x.db"])
def test_a_listen_url_that_is_no_database_is_refused(postgres_url: str, url: str) -> None:
    with pytest.raises(InvalidArgument, match="listen_url") as err:
        PostgresStore(postgres_url, listen_url=url)
    assert "postgresql://" in str(err.value)
