"""Replicas whose clocks disagree still agree on time (issue 14, item 1).

Two real ``botwire-server`` replicas share one PostgreSQL database; each runs under
``libfaketime`` with a clock the test sets (``support.faketime``). Every timestamp, TTL, quota day
and idempotency age comes from the database's clock, so:

- clocks 2 s apart on either side of midnight: the writes/day limit is still exact (before: the
  replicas kept resetting each other's count, 373 of 586 writes accepted at 5/day);
- clocks 13 h apart: a 1 h TTL written by one replica is live on the other, ``If-None-Match: *``
  still refuses to overwrite it, and ``expires_at`` is the database's time plus the TTL.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from support.faketime import FakeTimeFile
from support.postgres import PostgresUnavailable, new_database
from support.server import ServerProcess, running_server

from botwire._wire import key_path

DAY = 86400
LIMIT = 5


class Pair:
    def __init__(
        self,
        dsn: str,
        a: ServerProcess,
        b: ServerProcess,
        clock_a: FakeTimeFile,
        clock_b: FakeTimeFile,
    ) -> None:
        self.dsn, self.a, self.b, self.clock_a, self.clock_b = dsn, a, b, clock_a, clock_b

    def db_now(self) -> float:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
        assert row is not None
        return float(row[0])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    try:
        dsn = new_database("botwire_clock_skew")
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    tmp = tmp_path_factory.mktemp("faketime")
    clock_a, clock_b = FakeTimeFile(tmp / "a.spec"), FakeTimeFile(tmp / "b.spec")
    args = ("--writes-per-day", str(LIMIT))  # the access log shows each replica's clock
    with (
        running_server(*args, database=dsn, env=clock_a.env()) as a,
        running_server(*args, database=dsn, env=clock_b.env()) as b,
    ):
        yield Pair(dsn, a, b, clock_a, clock_b)


def _sent(request: Callable[[], httpx.Response]) -> httpx.Response:
    """``request``'s answer, sent again after a 503 "unavailable" as every botwire client does.

    Only for a replica whose clock just jumped a day ahead: libfaketime moves its monotonic
    clock too, so psycopg_pool finds every connection past its ``max_lifetime`` (1 h) at once and
    replaces each as it is returned, and libfaketime breaks the pool's timed wait for the
    replacement (it gives up at once instead of waiting up to 5 s). A real clock step never
    moves the monotonic clock; the answer that counts is the one after the retry.
    """
    for _ in range(20):
        response = request()
        if response.status_code != 503 or '"unavailable"' not in response.text:
            return response
        time.sleep(0.05)
    return response


def _server_now(server: ServerProcess) -> float:
    """The time a replica's own clock shows: the ``ts`` its access log gives a request."""
    import json

    def healthz_lines() -> list[dict]:
        return [
            json.loads(line)
            for line in server.log().splitlines()
            if line.startswith("{") and '"/healthz"' in line
        ]

    # The pair is shared by the module's tests: wait for THIS request's line, never an older
    # one (CI once read the previous test's line, written before the clock moved).
    seen = len(healthz_lines())
    httpx.get(server.url + "/healthz")
    for _ in range(100):
        lines = healthz_lines()
        if len(lines) > seen:
            return float(lines[-1]["ts"])
        time.sleep(0.05)
    raise AssertionError(f"no new access log line:\n{server.log()[-2000:]}")


def test_quota_is_exact_with_clocks_2s_apart_around_midnight(pair: Pair, ns: str) -> None:
    # At real time t1, replica A reads 23:59:58.5 and B 00:00:00.5 of the next day.
    t1 = time.time() + 1.5
    midnight = (math.floor(t1 / DAY) + 1) * DAY
    pair.clock_a.set_offset(midnight - 1.5 - t1)
    pair.clock_b.set_offset(midnight + 0.5 - t1)
    pair.clock_a.wait_applied()
    assert abs(_server_now(pair.a) - _server_now(pair.b)) >= 1  # they do disagree
    day_before = math.floor(pair.db_now() / DAY)
    accepted = refused = 0
    retry_errors: list[float] = []
    with httpx.Client(base_url=pair.a.url) as ca, httpx.Client(base_url=pair.b.url) as cb:
        for i in range(40):
            client = ca if i % 2 == 0 else cb
            r = client.put(key_path(ns, f"k{i}"), json={"value": i})
            assert r.status_code in (200, 429), r.text
            if r.status_code == 200:
                accepted += 1
            else:
                refused += 1
                body = r.json()["error"]
                assert body["code"] == "quota_exceeded" and body["quota"] == "writes_per_day"
                # Seconds to the database's midnight, whichever replica answered.
                db_left = (math.floor(pair.db_now() / DAY) + 1) * DAY - pair.db_now()
                retry_errors.append(abs(int(r.headers["retry-after"]) - db_left))
    day_after = math.floor(pair.db_now() / DAY)
    print(
        f"FIGURE clock skew 2s around midnight: {accepted} of 40 writes accepted "
        f"(limit {LIMIT}/day), {refused} refused"
    )
    if day_before == day_after:
        assert accepted == LIMIT
    else:  # the database itself crossed midnight mid-test: one legitimate reset
        assert LIMIT <= accepted <= 2 * LIMIT
    assert max(retry_errors) <= 5, "Retry-After is not the time to the database's midnight"


def test_ttl_and_conditions_agree_with_clocks_13h_apart(pair: Pair, ns: str) -> None:
    base = max(pair.clock_a.offset, pair.clock_b.offset)  # offsets only grow (support.faketime)
    pair.clock_b.set_offset(base)
    pair.clock_a.set_offset(base + 13 * 3600)
    pair.clock_a.wait_applied()
    assert _server_now(pair.a) - _server_now(pair.b) > 12 * 3600
    with httpx.Client(base_url=pair.a.url) as ca, httpx.Client(base_url=pair.b.url) as cb:
        for writer, reader, key in ((cb, ca, "from-b"), (ca, cb, "from-a")):
            r = writer.put(key_path(ns, key), json={"value": key, "ttl": 3600})
            assert r.status_code == 200, r.text
            got = reader.get(key_path(ns, key))
            assert got.status_code == 200, f"{key}: a live 1 h TTL is expired on the other replica"
            entry = got.json()
            now = pair.db_now()
            assert abs(entry["expires_at"] - (now + 3600)) < 60, entry
            assert abs(entry["updated_at"] - now) < 60, entry
            # If-None-Match: * must not overwrite the live entry, on either replica.
            for client in (ca, cb):
                again = client.put(
                    key_path(ns, key), json={"value": "overwritten"}, headers={"If-None-Match": "*"}
                )
                assert again.status_code == 412, again.text
            assert reader.get(key_path(ns, key)).json()["value"] == key
        # The listing agrees too (its filter is the database's clock).
        for client in (ca, cb):
            keys = client.get(f"/v1/namespaces/{ns}/keys").json()["keys"]
            assert sorted(k["key"] for k in keys) == ["from-a", "from-b"]


def test_idempotency_records_age_by_the_database_clock(pair: Pair, ns: str) -> None:
    """A replica 25 h ahead must not forget a record another replica wrote a moment ago."""
    base = max(pair.clock_a.offset, pair.clock_b.offset)
    pair.clock_b.set_offset(base)
    pair.clock_a.set_offset(base + 25 * 3600)
    pair.clock_a.wait_applied()
    headers = {"Idempotency-Key": f"ik-{ns}"}
    with httpx.Client(base_url=pair.a.url) as ca, httpx.Client(base_url=pair.b.url) as cb:
        first = cb.patch(key_path(ns, "n"), json={"incr": 1}, headers=headers)
        assert first.status_code == 200 and first.json()["value"] == 1
    # Replica A's housekeeping runs its purge of idempotency records older than a day: let
    # it run (60 s by default; its timers fired early when its clock jumped ahead) by
    # purging through A's own process: a write on A every 512 also purges, so trigger that.
    with httpx.Client(base_url=pair.a.url) as ca:
        for i in range(520):
            assert _sent(functools.partial(ca.delete, key_path(ns, f"x{i}"))).status_code == 200
    with psycopg.connect(pair.dsn) as conn:
        row = conn.execute("SELECT created_at FROM bw_idempotency WHERE ns = %s", (ns,)).fetchone()
    assert row is not None, "the record was forgotten"
    assert abs(row[0] - pair.db_now()) < 60
    with httpx.Client(base_url=pair.a.url) as ca:
        replay = _sent(lambda: ca.patch(key_path(ns, "n"), json={"incr": 1}, headers=headers))
        assert replay.json()["value"] == 1  # replayed, not applied twice
