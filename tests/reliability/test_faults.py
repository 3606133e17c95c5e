"""Random fault mixes at volume between the client and a real server (SQLite and PostgreSQL),
sync and async clients: appends, increments and batches apply exactly once; reads are retried;
a call that cannot succeed raises ``Unavailable`` within its deadline.

(``tests/client_http/test_faults.py`` covers each fault alone; this adds volume, mixes, the
async client, the PostgreSQL backend and the counts.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import Figures, check_order, scale
from support.faultproxy import FaultProxy
from support.server import ServerProcess, running_server

from botwire import AsyncMemory, Memory, Unavailable

MIX = {
    "drop_before": 0.07,
    "drop_after": 0.08,
    "cut_response": 0.07,
    "reset": 0.05,
    "unavailable": 0.05,
    "stall": 0.01,
}
FAULTS = tuple(MIX)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    from support.postgres import new_database

    database = (
        str(tmp_path_factory.mktemp("faults") / "f.db")
        if request.param == "sqlite"
        else new_database("botwire_reliability_faults")
    )
    with running_server("--no-access-log", database=database) as s:
        yield s


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server("--no-access-log", database=tmp_path_factory.mktemp("plain") / "p.db") as s:
        yield s


def _faults(proxy: FaultProxy) -> dict[str, int]:
    return {k: v for k, v in proxy.counts.items() if k != "pass"}


def _check(
    server: ServerProcess, ns: str, writers: list[str], rounds: int, extra_reads: int
) -> tuple[int, int]:
    truth = Memory(ns, url=server.url, retries=0)
    log = truth.get("log")
    lost, duplicated = check_order(log, writers, rounds)
    for w in writers:
        n = truth.get(f"n-{w}")
        lost += max(0, rounds - n)
        duplicated += max(0, n - rounds)
        batch_log = truth.get(f"b-{w}")
        bl, bd = check_order(batch_log, [w], rounds)
        lost, duplicated = lost + bl, duplicated + bd
        snaps = truth.get_many([f"s-{w}-{i}" for i in range(rounds)])
        lost += rounds - len(snaps)
    truth.close()
    return lost, duplicated


@pytest.mark.parametrize(
    "rounds", [pytest.param(60, id="ci"), pytest.param(400, id="long", marks=pytest.mark.slow)]
)
def test_sync_random_fault_mix(
    server: ServerProcess,
    ns: str,
    rounds: int,
    record_property: Any,
    request: pytest.FixtureRequest,
) -> None:
    """Per round: append, incr, an atomic batch (append + incr-free set), a set_many, a read."""
    reads = 0
    with FaultProxy(server.port, faults=MIX, seed=rounds) as proxy:
        m = Memory(ns, url=proxy.url, timeout=0.5, retries=20)
        for i in range(rounds):
            m.append("log", f"w0:{i}")
            m.incr("n-w0")
            with m.atomic() as tx:
                tx.append("b-w0", f"w0:{i}").set(f"s-w0-{i}", i)
            m.set_many({"last": i, "last-w0": i})
            assert m.get("last-w0") == i  # a read through the faults, retried
            assert m.tail("log", 1) == [f"w0:{i}"]
            reads += 2
        m.close()
        faults = _faults(proxy)
        exchanges = sum(proxy.counts.values())
    lost, duplicated = _check(server, ns, ["w0"], rounds, reads)
    backend = request.node.callspec.params["server"]
    Figures(
        f"faults/sync-mix/{backend}",
        attempted=rounds * 4 + reads,
        acknowledged=rounds * 4 + reads,
        faults=faults,
        lost=lost,
        duplicated=duplicated,
        extra={"http_exchanges": exchanges},
    ).record(record_property)
    assert (lost, duplicated) == (0, 0)
    assert sum(faults.values()) >= rounds  # the mix really broke things


@pytest.mark.parametrize(
    "rounds", [pytest.param(40, id="ci"), pytest.param(300, id="long", marks=pytest.mark.slow)]
)
def test_async_random_fault_mix(
    server: ServerProcess,
    ns: str,
    rounds: int,
    record_property: Any,
    request: pytest.FixtureRequest,
) -> None:
    """Four concurrent tasks on one AsyncMemory (httpx), same mix and the same checks."""
    writers = [f"t{i}" for i in range(4)]

    async def task(m: AsyncMemory, w: str) -> int:
        reads = 0
        for i in range(rounds):
            await m.append("log", f"{w}:{i}")
            await m.incr(f"n-{w}")
            tx = m.atomic()
            tx.append(f"b-{w}", f"{w}:{i}").set(f"s-{w}-{i}", i)
            await tx.commit()
            await m.set_many({f"last-{w}": i})
            assert await m.get(f"last-{w}") == i
            reads += 1
        return reads

    async def main(url: str) -> int:
        async with AsyncMemory(ns, url=url, timeout=0.5, retries=20) as m:
            return sum(await asyncio.gather(*(task(m, w) for w in writers)))

    with FaultProxy(server.port, faults=MIX, seed=rounds + 1) as proxy:
        reads = asyncio.run(main(proxy.url))
        faults = _faults(proxy)
        exchanges = sum(proxy.counts.values())
    lost, duplicated = _check(server, ns, writers, rounds, reads)
    backend = request.node.callspec.params["server"]
    writes = len(writers) * rounds * 4
    Figures(
        f"faults/async-mix/{backend}",
        attempted=writes + reads,
        acknowledged=writes + reads,
        faults=faults,
        lost=lost,
        duplicated=duplicated,
        extra={"http_exchanges": exchanges, "tasks": len(writers)},
    ).record(record_property)
    assert (lost, duplicated) == (0, 0)
    assert sum(faults.values()) >= rounds


@pytest.mark.parametrize("fault", ["stall", "unavailable", "drop_before", "reset"])
@pytest.mark.parametrize("client", ["sync", "async"])
def test_hopeless_call_raises_unavailable_within_its_deadline(
    plain_server: ServerProcess, ns: str, fault: str, client: str
) -> None:
    """Every attempt fails: each kind of call ends in Unavailable, within timeout x (retries+1)
    plus a small margin, and a write that never reached the server is not applied."""
    timeout, retries = 0.4, 2
    deadline = timeout * (retries + 1)
    srv = plain_server
    with FaultProxy(srv.port, script=[fault] * 1000) as proxy:
        calls: list[tuple[str, Any]] = [
            ("get", lambda m: m.get("k")),
            ("append", lambda m: m.append("l", 1)),
            ("incr", lambda m: m.incr("n")),
            ("set_many", lambda m: m.set_many({"a": 1})),
        ]
        outcomes: Counter[str] = Counter()
        for name, call in calls:
            started = time.monotonic()
            if client == "sync":
                m = Memory(ns, url=proxy.url, timeout=timeout, retries=retries)
                with pytest.raises(Unavailable) as info:
                    call(m)
                m.close()
            else:

                async def run(call: Any = call) -> None:
                    async with AsyncMemory(
                        ns, url=proxy.url, timeout=timeout, retries=retries
                    ) as am:
                        await call(am)

                with pytest.raises(Unavailable) as info:
                    asyncio.run(run())
            elapsed = time.monotonic() - started
            assert elapsed < deadline + 1.0, f"{name}: {elapsed:.2f} s > deadline {deadline}"
            assert info.value.namespace == ns, name
            outcomes[name] += 1
        if fault in ("stall", "unavailable", "drop_before"):  # never forwarded: nothing applied
            truth = Memory(ns, url=srv.url)
            assert truth.get_many(["l", "n", "a"]) == {}
    assert sum(outcomes.values()) == len(calls)


def test_reads_and_writes_under_heavy_faults_still_converge(
    plain_server: ServerProcess, ns: str, record_property: Any, request: pytest.FixtureRequest
) -> None:
    """Half of all exchanges broken: with a generous retry budget every call still succeeds
    exactly once."""
    heavy = {"drop_before": 0.15, "drop_after": 0.15, "cut_response": 0.1, "reset": 0.1}
    rounds = scale(60, 300, request)
    srv = plain_server
    with FaultProxy(srv.port, faults=heavy, seed=7) as proxy:
        m = Memory(ns, url=proxy.url, timeout=2, retries=40)
        for i in range(rounds):
            m.append("log", f"w0:{i}")
            m.incr("n-w0")
            assert m.get("n-w0") == i + 1
        m.close()
        truth = Memory(ns, url=srv.url)
        lost, duplicated = check_order(truth.get("log"), ["w0"], rounds)
        n = truth.get("n-w0")
        faults = _faults(proxy)
    lost += max(0, rounds - n)
    duplicated += max(0, n - rounds)
    Figures(
        "faults/heavy-50pct/sqlite",
        attempted=rounds * 3,
        acknowledged=rounds * 3,
        faults=faults,
        lost=lost,
        duplicated=duplicated,
    ).record(record_property)
    assert (lost, duplicated) == (0, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres-2-replicas"])
def test_racing_retries_with_one_idempotency_key_apply_once(
    backend: str,
    tmp_path: Path,
    ns: str,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    """What a client timeout produces: the retry arrives while the first attempt may still be
    in flight, possibly at another replica. Eight copies of each request, one Idempotency-Key,
    sent at once: applied once, and every copy gets the same answer."""
    import threading

    import httpx

    from botwire._wire import key_path

    copies, requests = 8, 15
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            urls = [
                stack.enter_context(
                    running_server("--no-access-log", database=tmp_path / "i.db")
                ).url
            ]
        else:
            dsn = request.getfixturevalue("pg_dsn")
            urls = [
                stack.enter_context(running_server("--no-access-log", database=dsn)).url
                for _ in range(2)
            ]
        clients = [
            stack.enter_context(httpx.Client(base_url=urls[i % len(urls)], timeout=30))
            for i in range(copies)
        ]
        answers: list[list[Any]] = []
        for r in range(requests):
            body = {"append": [f"w0:{r}"]} if r % 2 else {"incr": 1}
            key = "log" if r % 2 else "n-w0"
            barrier = threading.Barrier(copies)
            got: list[Any] = [None] * copies

            def send(
                i: int,
                body: dict[str, Any] = body,
                key: str = key,
                barrier: threading.Barrier = barrier,
                got: list[Any] = got,
                r: int = r,
            ) -> None:
                barrier.wait(10)
                resp = clients[i].patch(
                    key_path(ns, key), json=body, headers={"Idempotency-Key": f"race-{ns}-{r}"}
                )
                got[i] = (resp.status_code, resp.json())

            threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            answers.append(got)
        truth = Memory(ns, url=urls[0])
        log, n = truth.get("log") or [], truth.get("n-w0") or 0
        truth.close()
    expected_appends = requests // 2
    expected_incrs = requests - expected_appends
    lost = max(0, expected_appends - len(log)) + max(0, expected_incrs - n)
    duplicated = max(0, len(log) - expected_appends) + max(0, n - expected_incrs)
    differing = sum(1 for got in answers if len({repr(g) for g in got}) != 1)
    Figures(
        f"faults/racing-idempotent-retries/{backend}",
        attempted=copies * requests,
        acknowledged=sum(1 for got in answers for g in got if g and g[0] == 200),
        faults={"concurrent duplicate request": (copies - 1) * requests},
        lost=lost,
        duplicated=duplicated,
        extra={"requests_with_differing_answers": differing},
    ).record(record_property)
    assert (lost, duplicated) == (0, 0)
    assert differing == 0, [g for g in answers if len({repr(x) for x in g}) != 1][:2]
