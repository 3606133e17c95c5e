"""A store used without a server wakes servers' watchers: its writes send the watch's
``pg_notify`` (``storage/_pg_write.py``, behind the ``COMMIT``), and a server's own store sends
none (its watch hub does, coalesced). A notify PostgreSQL refuses never fails the committed
write. The wake-up of a server's waiter by such a writer, end to end:
``tests/watch/test_handoff.py::test_handoff_from_a_process_without_a_server``."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from support.postgres import role_without_notify
from support.server import running_server

from botwire import Memory, TypeMismatch
from botwire.store import Op
from botwire_server.storage import _pg_listen
from botwire_server.storage.postgres import PostgresStore
from botwire_server.watch import CHANNEL

pytestmark = pytest.mark.postgres


class Listener:
    """A ``LISTEN`` on the watch's channel; :meth:`heard` collects what arrived."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def heard(self, seconds: float = 0.5) -> list[str]:
        """Every payload that arrives within ``seconds``."""
        out: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            out += [n.payload for n in self.conn.notifies(timeout=left, stop_after=1)]
        return out

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def listener(postgres_url: str) -> Iterator[Listener]:
    heard = Listener(postgres_url)
    yield heard
    heard.close()


def _named(payloads: list[str], ns: str) -> int:
    return sum(ns in p.split(" ") for p in payloads)


def test_each_committed_write_and_clear_notify_once(
    make_store: object, listener: Listener, ns: str
) -> None:
    store = make_store()  # type: ignore[operator]
    mem = Memory(ns, store=store)
    mem.set("a", 1)
    mem.append("log", "x")
    assert _named(listener.heard(), ns) == 2
    mem.get("a")
    mem.get_many(["a", "log"])  # reads notify nobody
    with pytest.raises(TypeMismatch):
        mem.append("a", "y")  # refused: rolled back, nothing to see
    assert _named(listener.heard(), ns) == 0
    assert store.clear(ns) == 2
    assert _named(listener.heard(), ns) == 1


def test_notify_false_sends_none(make_store: object, listener: Listener, ns: str) -> None:
    store = make_store(notify=False)  # type: ignore[operator]
    store.batch(ns, [Op("set", "a", value="1")], atomic=True)
    store.clear(ns)
    assert _named(listener.heard(), ns) == 0


@pytest.mark.parametrize("writes", ["event loop", "threads"])
def test_a_server_notifies_each_write_once(
    postgres_url: str, listener: Listener, writes: str
) -> None:
    """The server's store is opened with ``notify=False``: with its writes on the event loop
    or in threads (``BOTWIRE_PG_ASYNC_WRITES=0``, where ``PostgresStore.batch`` runs them),
    one write is one notification, the watch hub's."""
    env = {"BOTWIRE_PG_ASYNC_WRITES": "0"} if writes == "threads" else {}
    ns = f"one-notify-{uuid.uuid4().hex[:8]}"
    with running_server(database=postgres_url, env=env) as srv, Memory(ns, url=srv.url) as mem:
        listener.heard(1.0)  # the hub's start-up probe
        mem.set("a", 1)
        assert _named(listener.heard(1.0), ns) == 1


def test_a_refused_notify_leaves_the_write_committed(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may write the tables but not run ``pg_notify``: every write and clear
    commits and answers as usual; the refusal is logged once, with the fix, and the store sends
    no notification for ``REFUSED_RETRY`` s. Once granted, notifications go out again."""
    monkeypatch.setattr(_pg_listen, "REFUSED_RETRY", 1.0)
    with (
        role_without_notify(fresh_postgres_url) as as_role,
        caplog.at_level(logging.DEBUG, logger="botwire_server"),
        PostgresStore(as_role, max_size=1) as store,
    ):
        mem = Memory("mute", store=store)
        for i in range(3):  # the same connection, again and again: never left broken
            assert mem.set("k", i) > 0
            mem.append("log", i)
        assert mem.get("k") == 2
        assert mem.get("log") == [0, 1, 2]
        assert store.clear("mute") == 2
        assert mem.get("k") is None
        refused = [r for r in caplog.records if "refused this store's notification" in r.message]
        assert len(refused) == 1 and refused[0].levelno == logging.WARNING, caplog.text
        assert "GRANT EXECUTE ON FUNCTION pg_notify(text, text)" in refused[0].message
        assert "permission denied" in refused[0].message
        assert "NOTIFY failed" not in caplog.text  # the other refusals: not tried, not logged
        # A wait: the listener's probe is refused the same way, so the store says so once
        # and its waits re-read every 50 ms (no listener reconnecting forever)
        after = mem.set("k", 3)
        assert store.changes("mute", after=after, wait=0.2).entries == []
        deadline = time.monotonic() + 10
        while store._wakes.state != "polling":
            assert time.monotonic() < deadline, store._wakes.state
            time.sleep(0.01)
        assert store.changes("mute", after=after - 1, wait=5).entries[0].value == 3
        assert "may not send notifications" in caplog.text
        assert "lost its connection" not in caplog.text
        # Granted: within REFUSED_RETRY the writes notify again, and the store says so
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            admin.execute("GRANT EXECUTE ON FUNCTION pg_notify(text, text) TO PUBLIC")
        heard = Listener(fresh_postgres_url)
        try:
            time.sleep(1.1)
            mem.set("k", 4)
            assert _named(heard.heard(1.0), "mute") == 1
        finally:
            heard.close()
        assert "this store's notifications are accepted again" in caplog.text
