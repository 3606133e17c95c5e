"""botwire-server behind a real PgBouncer 1.18 in ``pool_mode = transaction`` (docs/server.md,
"PgBouncer"): two replicas through one PgBouncer whose pool is smaller than their connection
pools, so their transactions keep changing PostgreSQL sessions.

- ``--pg-pooler auto`` (the default) finds the pooler at start and turns prepared statements
  off; ``--pg-pooler none`` in front of it refuses to start. With prepared statements on
  (the code before this fix) PgBouncer hands one connection's prepared statement to another,
  and requests fail (measured: ``prepared statement "_pg3_0" does not exist``, or ANOTHER
  statement's plan run with the wrong parameters).
- Every operation kind, idempotent retries, exact quotas and listings across the replicas.
- Watch across replicas: a LISTEN through PgBouncer is lost (its session goes back to the pool),
  so a replica without ``--pg-listen-url`` polls; with it, it listens on a direct connection;
  a LISTEN URL that is itself a pooler is found by the listener's probe (polls then).
- The conformance kit (``botwire.testing``) against a replica, with the PostgreSQL server
  behind it on PgBouncer.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.backends import LIMITS, HTTPBackend
from support.group_writers import Writer, namespaces_per_shared_transaction, verify_acked
from support.pgbouncer import PASSWORD, PgBouncer, running_pgbouncer
from support.polls import hold_poll, poll_answer, still_held, wakes
from support.postgres import shared_server
from support.server import ServerProcess, running_server, start_server

from botwire import Memory
from botwire.testing import StoreConformance

pytestmark = pytest.mark.postgres

LIMIT_ARGS = (
    "--max-value-bytes",
    str(LIMITS.max_value_bytes),
    "--max-namespace-bytes",
    str(LIMITS.max_namespace_bytes),
    "--max-keys",
    str(LIMITS.max_keys),
    "--writes-per-day",
    str(LIMITS.writes_per_day),
)
#: writers of ``test_writes_to_eight_namespaces_share_transactions_through_pgbouncer``
WRITERS_SHARED = 32
POOLER_FOUND = "the database URL leads to a transaction-mode pooler"
POLLING = "waiting watches see other replicas' writes by polling"


@pytest.fixture(scope="module")
def direct_url() -> str:
    """A database of its own on the session's PostgreSQL, reached directly."""
    try:
        return shared_server().new_database("botwire_pgbouncer")
    except Exception as exc:  # never a skip: PostgreSQL is required
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def bouncer(direct_url: str) -> Iterator[PgBouncer]:
    # 4 server connections for 2 replicas of up to 15 each: sessions are shared all the time.
    with running_pgbouncer(direct_url, pool_size=4) as b:
        yield b


@pytest.fixture(scope="module")
def bounced_url(bouncer: PgBouncer, direct_url: str) -> str:
    return bouncer.url(direct_url)


@pytest.fixture(scope="module")
def replicas(bounced_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two replicas on the PgBouncer URL with the default ``--pg-pooler auto``."""
    env = {"BOTWIRE_DATABASE_URL": bounced_url}  # not in argv (the password)
    a = start_server(*LIMIT_ARGS, database=False, env=env, testing_clock=True)
    try:
        b = start_server(*LIMIT_ARGS, database=False, env=env, testing_clock=True)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def _ns(name: str) -> str:
    return f"pgb-{name}-{uuid.uuid4().hex[:8]}"


def _clean(log: str) -> None:
    """No prepared-statement mix-up and no failed store call in a replica's log."""
    for bad in ('prepared statement \\"', "bind message", "store call", '"status": 503'):
        assert bad not in log, f"{bad!r} in the server log:\n{log[-3000:]}"


# -- prepared statements -------------------------------------------------------------------------


def test_start_finds_the_pooler_and_requests_share_sessions(
    replicas: tuple[ServerProcess, ServerProcess], bouncer: PgBouncer
) -> None:
    """Each replica says at start that it found a transaction pooler; 60 writes and reads of
    the same keys (psycopg would prepare after 5) all succeed through both replicas."""
    a, b = replicas
    ns = _ns("hot")
    with httpx.Client(timeout=10) as http:
        for i in range(60):
            server = (a, b)[i % 2]
            key = f"k{i % 3}"
            r = http.put(f"{server.url}/v1/namespaces/{ns}/keys/{key}", json={"value": i})
            assert r.status_code == 200, r.text
            g = http.get(f"{(b, a)[i % 2].url}/v1/namespaces/{ns}/keys/{key}")
            assert g.status_code == 200 and g.json()["value"] == i, g.text
    for server in (a, b):
        assert POOLER_FOUND in server.log()
        assert "--pg-pooler transaction" in server.log()
        _clean(server.log())
    pools = bouncer.admin("SHOW POOLS")
    assert pools, "PgBouncer served no pool"


def test_pgbouncer_hands_prepared_statements_to_other_clients(bounced_url: str) -> None:
    """Why prepared statements must be off (the premise of --pg-pooler): two psycopg
    connections through PgBouncer in transaction mode, each preparing its own statements at
    once (``prepare_threshold=0``), run into each other's: errors, or another plan run. This is
    what botwire-server did before this fix (12-35 of 80 requests failed: docs/server.md)."""
    import psycopg

    conns = [psycopg.connect(bounced_url, autocommit=True, prepare_threshold=0) for _ in "ab"]
    failures: list[str] = []
    try:
        for i in range(80):  # each connection cycles through 4 statements of its own
            conn, n = conns[i % 2], (i // 2) % 4
            query = (f"SELECT %s::int + {n}", f"SELECT length(%s::text) + {n}")[i % 2]
            try:
                conn.execute(query, (i,) if i % 2 == 0 else (str(i),)).fetchone()
            except psycopg.Error as exc:
                failures.append(type(exc).__name__)
    finally:
        for conn in conns:
            conn.close()
    print(f"FIGURE psycopg prepare_threshold=0 through PgBouncer: {len(failures)} of 80 failed")
    assert failures, "prepared statements survived transaction pooling (PgBouncer >= 1.21?)"


def test_probe_finds_the_pooler_under_load_and_never_postgresql(
    replicas: tuple[ServerProcess, ServerProcess], bounced_url: str, direct_url: str
) -> None:
    """``--pg-pooler auto``'s probe while 12 writers keep PgBouncer's 4 server connections
    busy (a replica restarting under traffic), and against PostgreSQL itself, where it must
    never say "pooler" (that would only cost prepared statements, but must not happen)."""
    from botwire_server.storage._pg_pooler import shares_sessions

    stop = threading.Event()

    def load(server: ServerProcess, w: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                http.put(f"{server.url}/v1/namespaces/{_ns('load')}/keys/w{w}", json={"value": i})
                i += 1

    threads = [threading.Thread(target=load, args=(replicas[w % 2], w)) for w in range(12)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        found = [shares_sessions(bounced_url) for _ in range(20)]
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    print(f"FIGURE pooler probe under load: found {sum(found)} of 20")
    assert sum(found) >= 18, found  # measured 30 of 30; a miss is documented (docs/server.md)
    assert not any(shares_sessions(direct_url) for _ in range(10))


def test_pg_pooler_none_refuses_a_transaction_pooler(bounced_url: str, direct_url: str) -> None:
    """``--pg-pooler none`` (prepared statements on) in front of PgBouncer in transaction mode
    stops the start with status 2 and names the fix; on PostgreSQL itself it serves."""
    import subprocess
    import sys

    from support.server import free_port

    done = subprocess.run(
        [sys.executable, "-m", "botwire_server", "--port", str(free_port()), "--pg-pooler", "none"],
        env={**os.environ, "BOTWIRE_DATABASE_URL": bounced_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--pg-pooler transaction" in done.stderr and "transaction-mode pooler" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    with running_server("--pg-pooler", "none", database=direct_url) as direct:
        assert httpx.put(
            f"{direct.url}/v1/namespaces/{_ns('d')}/keys/k", json={"value": 1}
        ).is_success
        assert POOLER_FOUND not in direct.log()


def test_pg_pooler_transaction_skips_the_probe(bounced_url: str) -> None:
    env = {"BOTWIRE_DATABASE_URL": bounced_url, "BOTWIRE_PG_POOLER": "transaction"}
    ns = _ns("explicit")
    with running_server(database=False, env=env) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(20):
                assert http.put(f"/v1/namespaces/{ns}/keys/k", json={"value": i}).is_success
                assert http.get(f"/v1/namespaces/{ns}/keys/k").json()["value"] == i
        log = server.log()
        assert POOLER_FOUND not in log and POLLING in log and "--pg-listen-url" in log
        _clean(log)


# -- every operation kind, across the replicas ---------------------------------------------------


def test_every_operation_kind_across_replicas(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    ns = _ns("ops")
    ma = Memory(ns, url=a.url, timeout=10, retries=0)
    mb = Memory(ns, url=b.url, timeout=10, retries=0)
    try:
        for _ in range(3):  # repeated: past psycopg's prepare threshold on every connection
            v = ma.set("doc", {"n": 1})
            assert mb.entry("doc").version == v
            assert mb.get("doc") == {"n": 1}
            assert ma.append("log", "x", "y") >= 2 and mb.tail("log", 2) == ["x", "y"]
            assert mb.pop("log") == "y"
            assert ma.incr("hits", 2) % 2 == 0
            assert mb.delete("doc") is True and ma.get("doc") is None
            ma.set_many({"s1": 1, "s2": 2})
            assert mb.get_many(["s1", "s2"]) == {"s1": 1, "s2": 2}
            tx = mb.atomic()
            tx.set("t1", "one")
            tx.incr("t2", 1)
            tx.commit()
            assert ma.get("t1") == "one"
            assert sorted(mb.list("s")) == ["s1", "s2"]
            assert {"hits", "log", "s1", "s2", "t1", "t2"} <= set(ma.keys())
            assert mb.usage().keys >= 6
        with httpx.Client(timeout=10) as http:
            r = http.post(
                f"{b.url}/v1/namespaces/{ns}/batch",
                json={
                    "ops": [
                        {"op": "set", "key": "n1", "value": 1},
                        {"op": "incr", "key": "doc-missing-list", "by": 1},
                        {"op": "append", "key": "s1", "items": [1]},  # s1 holds an int: 409
                    ],
                    "atomic": False,
                },
            )
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert "error" not in results[0] and results[1]["value"] == 1, r.text
            assert results[2]["error"]["code"] == "type_mismatch", r.text
        assert ma.get("n1") == 1 and ma.get("s1") == 1
        assert ma.clear() >= 6 and mb.keys() == []
    finally:
        ma.close()
        mb.close()
    for server in (a, b):
        _clean(server.log())


def test_idempotent_retry_lands_once_across_replicas(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """A retry of an append with the same Idempotency-Key, sent to the other replica (a load
    balancer's choice), applies once and answers the first result."""
    a, b = replicas
    ns = _ns("idem")
    headers = {"Idempotency-Key": "invocation-7:history"}
    body = {"append": ["turn"]}
    with httpx.Client(timeout=10) as http:
        first = http.patch(f"{a.url}/v1/namespaces/{ns}/keys/chat", json=body, headers=headers)
        again = http.patch(f"{b.url}/v1/namespaces/{ns}/keys/chat", json=body, headers=headers)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json() == again.json()
        assert http.get(f"{a.url}/v1/namespaces/{ns}/keys/chat").json()["value"] == ["turn"]


def test_quota_exact_across_replicas(bounced_url: str) -> None:
    """16 threads race 60 writes to one namespace over two replicas with ``--writes-per-day
    25``: exactly 25 land, the rest get 429, through PgBouncer's shared sessions."""
    env = {"BOTWIRE_DATABASE_URL": bounced_url, "BOTWIRE_PG_POOLER": "transaction"}
    ns = _ns("quota")
    codes: list[int] = []
    lock = threading.Lock()
    with (
        running_server("--writes-per-day", "25", database=False, env=env) as a,
        running_server("--writes-per-day", "25", database=False, env=env) as b,
    ):

        def writer(i: int) -> None:
            with httpx.Client(timeout=20) as http:
                for j in range(i, 60, 16):
                    url = (a, b)[j % 2].url
                    r = http.put(f"{url}/v1/namespaces/{ns}/keys/k{j}", json={"value": j})
                    with lock:
                        codes.append(r.status_code)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(set(codes)) == [200, 429], codes
        assert codes.count(200) == 25 and len(codes) == 60
        with httpx.Client(timeout=10) as http:
            assert len(http.get(f"{a.url}/v1/namespaces/{ns}/keys").json()["keys"]) == 25


def test_writes_to_eight_namespaces_share_transactions_through_pgbouncer(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """32 keep-alive writers over 8 namespaces, two per namespace on each replica, through
    PgBouncer's shared sessions (1.5 s at least, then until a shared transaction ran, 60 s at
    most): the groups of several namespaces run in one transaction (one statement locks their
    rows; sent as literals, prepared statements off), and every acknowledged write is there,
    read back through one replica (half went through the other)."""
    a, b = replicas
    spaces = [_ns(f"several{i}") for i in range(8)]
    stop = threading.Event()
    team = [Writer((a, b)[i % 2].port, spaces[i % 8], f"w{i}", stop) for i in range(WRITERS_SHARED)]
    for w in team:
        w.start()
    # Groups share a transaction when their transactions end in the same turn of a replica's
    # loop; behind PgBouncer's 4 sessions that is rarer than direct (none in some 1.5 s runs):
    # write until one ran, for 60 s at most.
    started, shared = time.monotonic(), [0.0, 0.0]
    while time.monotonic() - started < 60 and (time.monotonic() - started < 1.5 or max(shared) < 2):
        time.sleep(0.25)
        shared = [namespaces_per_shared_transaction(s.port) for s in (a, b)]
    took = time.monotonic() - started
    stop.set()
    for w in team:
        w.join(timeout=30)
    assert sum(len(w.keys) + len(w.items) for w in team) > 0
    print(
        f"FIGURE PgBouncer, 8 namespaces: {max(shared):.1f} namespaces per shared transaction"
        f" (writers ran {took:.1f} s)"
    )
    for space in spaces:
        lost = verify_acked(b.port, space, [w for w in team if w.ns == space])
        assert lost == 0, f"{lost} acknowledged writes to {space} missing"
    assert max(shared) >= 2, f"no transaction ran several namespaces ({shared})"
    for server in (a, b):
        _clean(server.log())


# -- watch across replicas ------------------------------------------------------------------------


#: The long-poll's ``wait``: a waiter that is never woken answers at its end (it re-reads then).
HOLD = 20.0


def _hand_off(waiter: ServerProcess, writer: ServerProcess, ns: str) -> float:
    """Seconds from a write on ``writer`` to the answer of a long-poll waiting on ``waiter``.
    Fails unless the answer holds the change and came before the hold's end: a waiter nobody
    wakes (a LISTEN lost in PgBouncer, before this fix) answers with the change only then, after
    HOLD s, against ~0.1 s measured for a poll or a NOTIFY (not a timing claim: woken or not)."""
    with httpx.Client(timeout=30) as http:
        after = http.get(f"{waiter.url}/v1/namespaces/{ns}/changes").json()["version"]
        answer: dict[str, Any] = {}

        def wait() -> None:
            r = http.get(f"{waiter.url}/v1/namespaces/{ns}/changes?after={after}&wait={HOLD}")
            answer["body"], answer["at"] = r.json(), time.monotonic()

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.5)  # the long-poll is registered on the waiter
        sent = time.monotonic()
        with httpx.Client(timeout=10) as w:
            assert w.put(f"{writer.url}/v1/namespaces/{ns}/keys/k", json={"value": 1}).is_success
        t.join(30)
    changes = answer["body"]["changes"]
    assert [c["key"] for c in changes] == ["k"], answer
    spent = float(answer["at"] - sent)
    assert spent < HOLD / 2, f"the waiter was not woken: it answered at its hold's end ({spent} s)"
    return spent


def test_watch_hands_off_across_replicas_by_polling(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """No --pg-listen-url behind PgBouncer: a watch on one replica still wakes on the other's
    write (polling), not at the end of its hold; the replica said so at start."""
    a, b = replicas
    spent = [_hand_off(b, a, _ns("watch-poll")) for _ in range(3)]
    spent += [_hand_off(a, b, _ns("watch-poll")) for _ in range(3)]
    for server in (a, b):
        assert POLLING in server.log() and "--pg-listen-url" in server.log()
    print(f"FIGURE watch hand-off through PgBouncer, polling: {min(spent):.3f}-{max(spent):.3f} s")


def test_polling_wakes_only_the_polls_under_the_written_keys(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """A polling replica reads the keys that changed in each moved namespace and wakes only the
    polls under them: 10 polls held on a prefix nobody writes stay asleep through 40 writes
    elsewhere in the namespace, through either replica (before: every poll of the namespace
    woke at every poll tick that saw it move, one store read each, ~10 a second a poll), and a
    write under ``job/`` wakes the one poll there within the hold."""
    a, b = replicas
    ns = _ns("poll-wake")
    with Memory(ns, url=a.url) as m:
        after = m.set("seed", 0)
        idle = [hold_poll(b, ns, prefix="nothing/", after=after) for _ in range(10)]
        job = hold_poll(b, ns, prefix="job/", after=after)
        try:
            time.sleep(0.5)  # the poller has seen the namespace (its first look wakes it once)
            before = wakes(b)
            for i in range(20):
                m.set(f"other/{i}", i)
                time.sleep(0.02)
            with Memory(ns, url=b.url) as own:  # the polling replica's own writes too
                for i in range(20):
                    own.set(f"mine/{i}", i)
                    time.sleep(0.02)
            time.sleep(0.5)  # several poll ticks after the last write
            assert wakes(b) == before, "writes under other prefixes woke held polls"
            assert all(still_held(s) for s in [*idle, job])
            m.set("job/done", True)
            answer = poll_answer(job, timeout=HOLD / 2)
            assert [c["key"] for c in answer["changes"]] == ["job/done"], answer
            assert all(still_held(s) for s in idle)
        finally:
            for sock in [*idle, job]:
                sock.close()


def test_watch_with_pg_listen_url_listens_directly(
    bounced_url: str, direct_url: str, replicas: tuple[ServerProcess, ServerProcess]
) -> None:
    """With --pg-listen-url (direct) a replica listens instead of polling, and wakes on a write
    made by a replica without it (NOTIFY through PgBouncer reaches a direct LISTEN)."""
    a, _ = replicas
    env = {"BOTWIRE_DATABASE_URL": bounced_url, "BOTWIRE_PG_LISTEN_URL": direct_url}
    with running_server(database=False, env=env) as listening:
        spent = [_hand_off(listening, a, _ns("watch-listen")) for _ in range(3)]
        log = listening.log()
        assert POLLING not in log, log[-2000:]
        _clean(log)
    print(
        f"FIGURE watch hand-off through PgBouncer, LISTEN direct: {min(spent):.3f}-"
        f"{max(spent):.3f} s"
    )


def test_a_replica_behind_the_pooler_skips_its_own_notifications(
    bounced_url: str, direct_url: str
) -> None:
    """Behind PgBouncer a replica's notifications leave through any pooled session, so the
    sender's pid cannot tell its own from another replica's; each carries the replica's origin.
    A write of 40 keys through a listening replica (more keys than a notification hints at, so
    it names the namespace alone) wakes none of its polls under another prefix: its own
    notification, not skipped, woke all 10 to read again."""
    env = {"BOTWIRE_DATABASE_URL": bounced_url, "BOTWIRE_PG_LISTEN_URL": direct_url}
    with running_server("--watch-hold", "30", database=False, env=env) as server:
        ns = _ns("own")
        with Memory(ns, url=server.url) as m:
            after = m.set("seed", 0)
            idle = [hold_poll(server, ns, prefix="nothing/", after=after) for _ in range(10)]
            try:
                time.sleep(1.0)  # the seed's notification is back; the polls are held
                before = wakes(server)
                m.set_many({f"many/{i}": i for i in range(40)})
                time.sleep(1.0)
                assert wakes(server) == before, "its own notification woke its polls"
                assert all(still_held(s) for s in idle)
                assert POLLING not in server.log()
            finally:
                for sock in idle:
                    sock.close()


def test_listen_url_through_the_pooler_is_found_and_polls(
    bounced_url: str, replicas: tuple[ServerProcess, ServerProcess]
) -> None:
    """A --pg-listen-url that is itself the PgBouncer URL: the listener's probe notification
    never arrives, the replica warns and polls, and the hand-off still works."""
    a, _ = replicas
    env = {
        "BOTWIRE_DATABASE_URL": bounced_url,
        "BOTWIRE_PG_LISTEN_URL": bounced_url,
        "BOTWIRE_PG_POOLER": "transaction",
    }
    with running_server(database=False, env=env) as confused:
        deadline = time.monotonic() + 30
        while "did not receive a notification" not in confused.log():
            assert time.monotonic() < deadline, confused.log()[-3000:]
            time.sleep(0.1)
        assert POLLING in confused.log()
        _hand_off(confused, a, _ns("watch-confused"))
        assert PASSWORD not in confused.log()  # both URLs' password masked in every line
        assert "'pg_listen_url': 'postgresql://postgres:***@" in confused.log()


def test_a_store_without_a_server_behind_pgbouncer_polls_or_listens_directly(
    bounced_url: str,
    direct_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``PostgresStore`` on the PgBouncer URL, no server: its waiting watch's listener never
    hears its own probe (the LISTEN is lost in the pool), says so naming ``listen_url``, and
    the watch re-reads every 50 ms, still woken by the write. With ``listen_url`` (direct) it
    listens, and a write through PgBouncer (its notify too) wakes it: its re-read without a
    notification is pushed past the hold, so only that can."""
    from botwire_server.storage import _pg_listen, _pg_watch
    from botwire_server.storage.postgres import PostgresStore

    monkeypatch.setattr(_pg_listen, "PROBE_SECONDS", 1.0)
    monkeypatch.setattr(_pg_watch, "WATCH_BACKSTOP", 3 * HOLD)
    ns = _ns("direct-watch")
    options: dict[str, Any] = {"prepare_threshold": None, "max_size": 2}
    with (
        PostgresStore(bounced_url, **options) as pooled,
        PostgresStore(bounced_url, listen_url=direct_url, **options) as listening,
        PostgresStore(bounced_url, **options) as writing,
    ):
        writer = Memory(ns, store=writing)
        for store, state in ((pooled, "polling"), (listening, "listening")):
            after = writer.set("k", 0)
            answer: dict[str, Any] = {}

            def wait(store: PostgresStore, after: int, answer: dict[str, Any]) -> None:
                answer["entry"] = Memory(ns, store=store).watch("k", after=after, timeout=HOLD)
                answer["at"] = time.monotonic()

            t = threading.Thread(target=wait, args=(store, after, answer))
            t.start()
            deadline = time.monotonic() + 15
            while store._wakes.state != state:
                assert time.monotonic() < deadline, store._wakes.state
                time.sleep(0.01)
            time.sleep(0.2)  # asleep in its wait
            sent = time.monotonic()
            writer.set("k", 1)
            t.join(30)
            assert answer["entry"] is not None and answer["entry"].value == 1, answer
            assert answer["at"] - sent < HOLD / 2, f"{state}: not woken"
    assert "did not receive a notification" in caplog.text and "listen_url=" in caplog.text
    assert PASSWORD not in caplog.text


def test_listen_url_settings_are_checked(tmp_path: Any) -> None:
    """A listen URL for a SQLite server, or one that is not PostgreSQL, stops the start with
    status 2 and says why; a wrong --pg-pooler is refused by argparse."""
    import subprocess
    import sys

    for args, expected in (
        (["--pg-listen-url", "postgresql://u@db/x"], "only applies to a PostgreSQL --database"),
        (["--pg-pooler", "session"], "invalid choice: 'session'"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "botwire_server", "--database", str(tmp_path / "x.db"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2 and expected in done.stderr, done.stderr


# -- the benchmark's harness ---------------------------------------------------------------------


def test_p16_harness_runs_every_variant(fresh_postgres_url: str, tmp_path: Any) -> None:
    """``benchmarks/pg_bouncer.py`` (P16) runs briefly against real replicas and PgBouncer;
    every SET it counts succeeded (it raises otherwise). Nothing here asserts a timing."""
    import math
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import pg_bouncer
    from _common import Settings

    settings = Settings(quick=True, rounds=1, out=tmp_path, postgres_url=fresh_postgres_url)
    rows = pg_bouncer.p16_pgbouncer(settings, seconds=0.3, rounds=1)
    assert [r.id for r in rows] == ["P16", "P16b"]
    assert all(math.isfinite(r.value) and r.value > 0 for r in rows), rows
    for variant, (run,) in rows[0].details["runs"].items():
        assert run["sets_per_s"] > 0 and run["cpu_us_per_set"] > 0, variant
    assert rows[0].details["runs"]["two-bouncer"][0]["bouncer_us_per_set"] > 0


# -- the conformance kit, through PgBouncer -------------------------------------------------------


class TestConformanceThroughPgBouncer(StoreConformance):
    """Every case of ``botwire.testing`` against a replica whose PostgreSQL is behind
    PgBouncer in transaction mode."""

    @pytest.fixture
    def backend(self, replicas: tuple[ServerProcess, ServerProcess]) -> Iterator[HTTPBackend]:
        b = HTTPBackend(replicas[0].url, "http-pgbouncer")
        yield b
        b.close()

    @pytest.fixture
    def ns(self, request: pytest.FixtureRequest) -> str:
        return _ns(request.node.name.split("[")[0].removeprefix("test_")[:40])
