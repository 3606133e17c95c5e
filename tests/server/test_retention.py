"""Retention policies (issue 18 item 4) through real botwire-server processes, on SQLite and on
PostgreSQL: a namespace's default TTL and maximum list length are enforced in the write, its
idle age and a lowered list length by housekeeping, which removes what the policy says and
nothing else; only admin tokens set policies; hostile values get clear 400s.

Time moves with the server's testing clock (``POST /_testing/clock``), never by sleeping; the
background housekeeping runs every 0.2 s and is waited for by polling the database itself."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from server.srv_helpers import SECRET
from support.postgres import postgres_url as _postgres_url_fixture
from support.server import ServerProcess, running_server

from botwire import Forbidden, InvalidArgument, Memory, Policy
from botwire_server.auth import mint_token

postgres_url = _postgres_url_fixture(prefix="botwire_retention")

#: The store-wide default list length of the servers below (--default-max-list-len).
DEFAULT_LEN = 100
#: A watch's timeout in the tests below: the server's long-poll holds that long.
WATCH_HOLD = 20.0


@dataclass
class Retention:
    """A server with the testing clock and fast housekeeping, and a way to count its rows."""

    server: ServerProcess
    count: Callable[[str, tuple[Any, ...]], int]
    admin: str  # tokens covering "r-*"
    write: str
    read: str

    def memory(self, ns: str, token: str | None = None) -> Memory:
        return Memory(ns, url=self.server.url, token=token or self.admin, retries=2)

    def advance(self, seconds: float) -> None:
        r = httpx.post(f"{self.server.url}/_testing/clock", json={"advance": seconds})
        assert r.status_code == 200, r.text

    def rows(self, ns: str, key: str | None = None) -> int:
        if key is None:
            return self.count("SELECT count(*) FROM bw_entries WHERE ns = ?", (ns,))
        return self.count("SELECT count(*) FROM bw_entries WHERE ns = ? AND key = ?", (ns, key))

    def items(self, ns: str, key: str) -> int:
        """List rows still stored (a trim on SQLite may leave some for the sweep: not counted
        below the list's head)."""
        return self.count(
            "SELECT count(*) FROM bw_items i JOIN bw_entries e ON e.ns = i.ns AND e.key = i.key"
            " WHERE i.ns = ? AND i.key = ? AND i.seq >= e.head",
            (ns, key),
        )


def _server_args() -> tuple[str, ...]:
    return ("--token-secret", SECRET, "--default-max-list-len", str(DEFAULT_LEN))


def _tokens() -> dict[str, str]:
    return {p: mint_token(SECRET, ["r-*"], perm=p) for p in ("admin", "write", "read")}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def retention(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retention]:
    env = {"BOTWIRE_HOUSEKEEPING_SECONDS": "0.2"}
    if request.param == "sqlite":
        db: Path = tmp_path_factory.mktemp("retention") / "b.db"

        def count(sql: str, params: tuple[Any, ...]) -> int:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                return int(conn.execute(sql, params).fetchone()[0])
            finally:
                conn.close()

        database: Any = db
    else:
        url: str = request.getfixturevalue("postgres_url")

        def count(sql: str, params: tuple[Any, ...]) -> int:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(sql.replace("?", "%s"), params).fetchone()
                assert row is not None
                return int(row[0])

        database = url
    with running_server(*_server_args(), database=database, testing_clock=True, env=env) as s:
        yield Retention(s, count, **_tokens())


def _ns() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for the background housekeeping (every 0.2 s) to have done ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"housekeeping did not {what} within {timeout} s"
        time.sleep(0.1)


def test_default_ttl_and_max_list_len_remove_what_the_policy_says_and_nothing_else(
    retention: Retention,
) -> None:
    ns, other = _ns(), _ns()
    m, o = retention.memory(ns), retention.memory(other)
    policy = m.set_policy(default_ttl=1, max_list_len=3)
    assert policy == Policy(1.0, 3, None, ("default_ttl", "max_list_len"))
    assert m.usage().policy == policy  # usage shows the policy in force
    for memory in (m, o):
        memory.set("plain", {"a": 1})
        memory.set("explicit", "kept", ttl=3600)  # an explicit ttl wins over the default
        memory.append("chat", *range(10))
        memory.append("chat", 10, max_len=50)  # a larger max_len is lowered to the policy's
        memory.incr("counter")
    # in the write: the list is trimmed at once, the default TTL set on every write without one
    assert m.get("chat") == [8, 9, 10] and retention.items(ns, "chat") == 3
    assert o.get("chat") == list(range(11)) and retention.items(other, "chat") == 11
    for key in ("plain", "chat", "counter"):
        entry = m.entry(key)
        assert entry is not None and entry.expires_at is not None
        assert entry.expires_at - entry.updated_at == pytest.approx(1.0), key
        entry = o.entry(key)
        assert entry is not None and entry.expires_at is None, key
    retention.advance(2)
    assert m.keys() == ["explicit"]  # invisible at once
    # ... and removed by housekeeping: the rows go, other namespaces and explicit TTLs stay
    _eventually(lambda: retention.rows(ns) == 1, "purge the entries the default TTL expired")
    assert retention.rows(ns, "explicit") == 1
    assert retention.rows(other) == 4
    assert o.get("plain") == {"a": 1} and o.get("counter") == 1
    assert m.get("explicit") == "kept"


def test_store_default_override_and_unset(retention: Retention) -> None:
    ns = _ns()
    m = retention.memory(ns)
    assert m.policy() == Policy(None, DEFAULT_LEN, None, ())  # the server's flag
    m.append("l", *range(DEFAULT_LEN + 20))
    assert len(m.get("l")) == DEFAULT_LEN
    assert m.set_policy(max_list_len=0) == Policy(None, None, None, ("max_list_len",))  # off
    m.append("l", *range(50))
    assert len(m.get("l")) == DEFAULT_LEN + 50
    assert m.set_policy(max_list_len=None) == Policy(None, DEFAULT_LEN, None, ())  # unset
    m.append("l", "last")
    assert len(m.get("l")) == DEFAULT_LEN and m.get("l")[-1] == "last"
    # fields left out keep their value
    m.set_policy(default_ttl=60)
    assert m.set_policy(max_idle=3600) == Policy(
        60.0, DEFAULT_LEN, 3600.0, ("default_ttl", "max_idle")
    )


def test_housekeeping_trims_lists_when_the_max_is_lowered(retention: Retention) -> None:
    ns, other = _ns(), _ns()
    m, o = retention.memory(ns), retention.memory(other)
    for memory in (m, o):
        memory.append("a", *range(40))
        memory.append("b", *range(5))
        memory.set("array", list(range(40)))  # a JSON value, not a list: never trimmed
    before = m.entry("a")
    assert before is not None
    m.set_policy(max_list_len=10)
    _eventually(lambda: retention.items(ns, "a") == 10, "trim the list to the lowered max")
    assert m.get("a") == list(range(30, 40))
    after = m.entry("a")
    assert after is not None and after.version > before.version  # readers see a change
    assert after.expires_at is None  # the trim keeps the list's expiry (none)
    assert m.get("b") == list(range(5)) and m.get("array") == list(range(40))
    assert o.get("a") == list(range(40))  # another namespace: untouched
    assert m.usage().keys == 3


def test_idle_namespaces_are_cleared_and_only_they(retention: Retention) -> None:
    idle, busy, unruled = _ns(), _ns(), _ns()
    for ns in (idle, busy, unruled):
        memory = retention.memory(ns)
        memory.set("k", 1)
        memory.append("l", 1, 2)
    for ns in (idle, busy):
        retention.memory(ns).set_policy(max_idle=100)
    retention.advance(60)
    retention.memory(busy).set("k", 2)  # a write restarts busy's idle age
    retention.advance(60)  # idle: 120 s without a write; busy: 60 s
    _eventually(lambda: retention.rows(idle) == 0, "clear the idle namespace")
    assert retention.memory(idle).keys() == []
    assert retention.memory(idle).policy().max_idle == 100.0  # the policy stays
    assert retention.memory(busy).get("k") == 2 and retention.rows(busy) == 2
    assert retention.memory(unruled).keys() == ["k", "l"]
    # a read is not a write: reading does not keep a namespace alive
    retention.memory(busy).get("k")
    retention.advance(101)
    _eventually(lambda: retention.rows(busy) == 0, "clear the namespace idle again")
    assert retention.rows(unruled) == 2


def test_watchers_wake_when_housekeeping_clears_or_trims(retention: Retention) -> None:
    """A watch waiting on a key that housekeeping then deletes (an idle namespace cleared) or
    changes (a list trimmed to a lowered length) returns the tombstone or the new version when
    it happens, not when its long-poll's hold ends. On PostgreSQL the server's watch hub hears
    of no housekeeping: the store notifies for it (before, such a waiter slept its whole hold;
    on SQLite the hub's ``data_version`` poller sees the commit)."""
    idle, trimmed = _ns(), _ns()
    retention.memory(idle).set("k", 1)
    retention.memory(trimmed).append("l", *range(10))
    retention.memory(idle).set_policy(max_idle=100)
    for ns, key, change in (
        (idle, "k", lambda: retention.advance(101)),
        (trimmed, "l", lambda: retention.memory(trimmed).set_policy(max_list_len=3)),
    ):
        memory = retention.memory(ns)
        after = memory.entry(key).version  # type: ignore[union-attr]
        answer: dict[str, Any] = {}

        def wait(memory: Memory, key: str, after: int, answer: dict[str, Any]) -> None:
            answer["entry"] = memory.watch(key, after=after, timeout=WATCH_HOLD)
            answer["at"] = time.monotonic()

        waiter = threading.Thread(target=wait, args=(memory, key, after, answer))
        waiter.start()
        time.sleep(0.5)  # the long-poll waits on the server
        started = time.monotonic()
        change()
        waiter.join(WATCH_HOLD + 15)
        entry = answer["entry"]
        assert entry is not None and entry.version > after, answer
        if ns == idle:
            assert entry.deleted, entry
        else:
            assert entry.value == [7, 8, 9], entry
        waited = answer["at"] - started
        # housekeeping runs every 0.2 s; a waiter nobody woke returns at its hold's end
        assert waited < WATCH_HOLD / 2, f"{ns}: not woken ({waited:.1f} s)"


def test_only_admin_tokens_set_policies(retention: Retention) -> None:
    ns = _ns()
    retention.memory(ns).set_policy(max_list_len=7)
    for perm in ("write", "read"):
        memory = retention.memory(ns, getattr(retention, perm))
        with pytest.raises(Forbidden) as refused:
            memory.set_policy(max_list_len=1000)
        assert "admin" in str(refused.value) and ns in str(refused.value)
        assert memory.policy().max_list_len == 7  # reading it needs read access only
    outsider = mint_token(SECRET, ["other-*"], perm="admin")  # an admin of other namespaces
    with pytest.raises(Forbidden):
        retention.memory(ns, outsider).set_policy(max_list_len=1000)
    with pytest.raises(Forbidden):
        retention.memory(ns, outsider).policy()
    r = httpx.put(f"{retention.server.url}/v1/namespaces/{ns}/policy", json={"max_list_len": 1})
    assert r.status_code == 401
    assert retention.memory(ns).policy().max_list_len == 7  # nothing changed


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"default_ttl": -1}, "default_ttl"),
        ({"default_ttl": 1e300}, "default_ttl"),
        ({"default_ttl": "1d"}, "default_ttl"),
        ({"max_idle": True}, "max_idle"),
        ({"max_idle": -0.5}, "max_idle"),
        ({"max_list_len": 2.5}, "max_list_len"),
        ({"max_list_len": -3}, "max_list_len"),
        ({"max_list_len": 10**30}, "max_list_len"),
        ({"max_list_len": [5]}, "max_list_len"),
        ({"retention": 5}, "retention"),
        ({}, "default_ttl"),
        ([{"max_list_len": 5}], "JSON object"),
        ("max_list_len=5", "JSON object"),
    ],
)
def test_hostile_policies_get_clear_400s(retention: Retention, body: Any, named: str) -> None:
    ns = _ns()
    memory = retention.memory(ns)
    memory.set_policy(max_list_len=5)
    r = httpx.put(
        f"{retention.server.url}/v1/namespaces/{ns}/policy",
        json=body,
        headers={"Authorization": f"Bearer {retention.admin}"},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument" and named in error["message"], error
    assert error["namespace"] == ns
    assert memory.policy() == Policy(None, 5, None, ("max_list_len",))  # nothing changed


def test_the_client_refuses_bad_values_before_any_request(retention: Retention) -> None:
    memory = Memory(_ns(), url="http://127.0.0.1:9", retries=0)  # nothing listens: no I/O
    for bad in ({"default_ttl": float("nan")}, {"max_list_len": 1.5}, {"max_idle": -1}):
        with pytest.raises(InvalidArgument, match=next(iter(bad))):
            memory.set_policy(**bad)


def test_cli_policy_get_and_set(retention: Retention) -> None:
    ns = _ns()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "botwire.cli", "--url", retention.server.url]
        return subprocess.run(
            [*argv, "--token", retention.admin, "policy", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = cli("set", ns, "--default-ttl", "12h", "--max-list-len", "20", "--max-idle", "30d")
    assert done.returncode == 0, done.stderr
    assert '"default_ttl": 43200.0' in done.stdout and '"max_idle": 2592000.0' in done.stdout
    assert retention.memory(ns).policy() == Policy(
        43200.0, 20, 2592000.0, ("default_ttl", "max_list_len", "max_idle")
    )
    done = cli("set", ns, "--max-list-len", "default", "--max-idle", "0")
    assert done.returncode == 0, done.stderr
    assert retention.memory(ns).policy() == Policy(
        43200.0, DEFAULT_LEN, None, ("default_ttl", "max_idle")
    )
    got = cli("get", ns)
    assert got.returncode == 0 and '"max_list_len": 100' in got.stdout
    bad = cli("set", ns, "--max-list-len", "-4")
    assert bad.returncode == 2 and "max_list_len" in bad.stderr, bad.stderr
    assert cli("set", ns).returncode == 2  # nothing to change


@pytest.mark.postgres
def test_a_policy_set_on_one_replica_binds_the_others_at_once(postgres_url: str) -> None:
    """Two servers on one PostgreSQL database: the policy lives in the database and is read
    with every write's namespace lock, so no replica enforces a stale copy."""
    env = {"BOTWIRE_HOUSEKEEPING_SECONDS": "3600"}  # in the write, not by housekeeping
    with (
        running_server(*_server_args(), database=postgres_url, env=env) as a,
        running_server(*_server_args(), database=postgres_url, env=env) as b,
    ):
        tokens = _tokens()
        ns = _ns()
        on_a = Memory(ns, url=a.url, token=tokens["admin"], retries=2)
        on_b = Memory(ns, url=b.url, token=tokens["write"], retries=2)
        on_b.append("chat", *range(10))
        for length in (4, 2, 6):
            on_a.set_policy(max_list_len=length)
            assert on_b.policy().max_list_len == length
            on_b.append("chat", "x")
            assert len(on_b.get("chat")) <= length and on_b.get("chat")[-1] == "x"
        assert len(on_b.get("chat")) == 3  # 2 kept by the previous policy, then one appended
        on_a.set_policy(default_ttl=600)
        on_b.set("k", 1)
        entry = on_b.entry("k")
        assert entry is not None and entry.expires_at is not None
