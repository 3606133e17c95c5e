"""Admission of request bodies (``--max-inflight-bytes``, ``botwire_server.admission``): a body
that does not fit waits for the bodies in flight to be answered, one body is always admitted
when nothing else is in flight, a body that waits too long is refused 503 with ``Retry-After``
(clients retry it), and what was admitted is released however the request ends. A lost wake-up
would hold a request its whole wait and then refuse it: the server test below fails on that
without timing anything."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import uuid
from typing import Any

import httpx
import pytest
from server.srv_helpers import key_url
from support.postgres import postgres_url
from support.server import running_server

from botwire_server.admission import Admission, AdmissionMiddleware, ServerBusy

admission_pg_url = postgres_url(scope="module", prefix="botwire_admission")


def _scope() -> dict[str, Any]:
    return {"type": "http"}


def test_one_body_is_admitted_whatever_its_size_when_nothing_is_in_flight() -> None:
    async def main() -> None:
        gate = Admission(100)
        scope = _scope()
        await gate.admit(scope, 1_000)
        assert gate.inflight == 1_000 and gate.waited == 0
        await gate.release(scope)
        assert gate.inflight == 0

    asyncio.run(main())


def test_a_body_that_does_not_fit_waits_until_a_release_makes_room() -> None:
    async def main() -> None:
        gate = Admission(100)
        first, second = _scope(), _scope()
        await gate.admit(first, 60)
        waiting = asyncio.create_task(gate.admit(second, 60))
        await asyncio.sleep(0.05)
        assert not waiting.done() and gate.waiting == 1 and gate.inflight == 60
        await gate.release(first)
        await asyncio.wait_for(waiting, 1.0)
        assert gate.inflight == 60 and gate.waiting == 0 and gate.waited == 1
        await gate.release(second)
        assert gate.inflight == 0

    asyncio.run(main())


def test_one_release_wakes_every_waiter_that_now_fits() -> None:
    async def main() -> None:
        gate = Admission(100)
        big = _scope()
        await gate.admit(big, 100)
        small = [_scope() for _ in range(3)]
        waiters = [asyncio.create_task(gate.admit(s, 30)) for s in small]
        await asyncio.sleep(0.05)
        assert gate.waiting == 3
        await gate.release(big)
        await asyncio.wait_for(asyncio.gather(*waiters), 1.0)
        assert gate.inflight == 90 and gate.waiting == 0

    asyncio.run(main())


def test_a_body_that_waits_too_long_is_refused_503_and_takes_nothing() -> None:
    async def main() -> None:
        gate = Admission(100, wait_seconds=0.1)
        held, late = _scope(), _scope()
        await gate.admit(held, 60)
        with pytest.raises(ServerBusy) as refused:
            await gate.admit(late, 60)
        assert refused.value.status == 503 and refused.value.details["retry_after"] == 1
        assert "60 bytes" in str(refused.value) and "limit is 100" in str(refused.value)
        assert gate.inflight == 60 and gate.refused == 1 and gate.waiting == 0
        await gate.release(late)  # nothing was taken for it: nothing to give back
        assert gate.inflight == 60

    asyncio.run(main())


def test_a_waiter_whose_caller_gives_up_stops_waiting() -> None:
    async def main() -> None:
        gate = Admission(100)
        held = _scope()
        await gate.admit(held, 100)
        waiting = asyncio.create_task(gate.admit(_scope(), 10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gate.waiting == 0 and gate.inflight == 100
        await gate.release(held)
        assert gate.inflight == 0

    asyncio.run(main())


@pytest.mark.parametrize("fails", [False, True], ids=["answered", "raised"])
def test_the_middleware_releases_what_a_request_was_admitted_for(fails: bool) -> None:
    async def main() -> None:
        gate = Admission(100)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await gate.admit(scope, 80)
            if fails:
                raise RuntimeError("the route failed")

        wrapped = AdmissionMiddleware(app, gate)
        await gate.admit(_scope(), 1)  # in flight, so the request's 80 still fits
        if fails:
            with pytest.raises(RuntimeError, match="the route failed"):
                await wrapped({"type": "http"}, None, None)
        else:
            await wrapped({"type": "http"}, None, None)
        assert gate.inflight == 1  # the request's 80 bytes were released

    asyncio.run(main())


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


@pytest.mark.parametrize(
    "database",
    ["sqlite", "sqlite-thread", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_concurrent_bodies_over_the_limit_wait_their_turn_and_all_land(
    request: pytest.FixtureRequest, database: str
) -> None:
    """A one-byte limit admits one body at a time: 24 writers at once all get a 200 (a lost
    wake-up would hold one for the 10 s wait and then answer 503), /metrics counts the bodies
    that waited, and nothing is left admitted afterwards. Where the store call awaits (SQLite
    with ``--store-calls thread``, PostgreSQL) the bodies behind an admitted write really sleep
    until it is answered. SQLite called inline (the default) applies most writes without
    yielding between admission and answer, so nothing need wait there: it must still answer
    every writer and leave nothing admitted."""
    ns = f"adm-{uuid.uuid4().hex[:8]}"
    value = "x" * 40_000
    db: Any = request.getfixturevalue("admission_pg_url") if database == "postgres" else None
    extra = ["--store-calls", "thread"] if database == "sqlite-thread" else []
    with running_server("--max-inflight-bytes", "1", "--no-access-log", *extra, database=db) as srv:

        def put(i: int) -> int:
            with httpx.Client(base_url=srv.url, timeout=60) as http:
                return http.put(key_url(ns, f"k{i}"), json={"value": f"{i}{value}"}).status_code

        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(put, range(24)))
        assert statuses == [200] * 24
        with httpx.Client(base_url=srv.url, timeout=10) as http:
            for i in range(24):
                assert http.get(key_url(ns, f"k{i}")).json()["value"] == f"{i}{value}"
            metrics = http.get("/metrics").text
    if database != "sqlite":
        assert _metric(metrics, "botwire_admission_waits_total") >= 1
    assert _metric(metrics, "botwire_admission_refusals_total") == 0
    assert _metric(metrics, "botwire_inflight_bytes") == 0
