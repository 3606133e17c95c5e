"""The HTTP client against a real server through a proxy that breaks connections on purpose.

Every write is applied exactly once however the connection fails (the Idempotency-Key at work),
reads are retried, and a call that cannot succeed raises Unavailable instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faultproxy import FaultProxy
from support.server import ServerProcess, running_server

from botwire import Memory, QuotaExceeded, Unavailable

BREAKS = ["drop_before", "drop_after", "cut_response", "reset", "unavailable"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("faults") / "s.db") as s:
        yield s


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def _direct(server: ServerProcess, ns: str) -> Memory:
    return Memory(ns, url=server.url, retries=0)


@pytest.mark.parametrize("fault", BREAKS)
def test_writes_apply_exactly_once_when_the_connection_breaks(
    server: ServerProcess, proxy: FaultProxy, ns: str, fault: str
) -> None:
    m = Memory(ns, url=proxy.url, timeout=5, retries=3)
    truth = _direct(server, ns)
    proxy.set_script([fault])
    assert m.append("h", "first") == 1
    proxy.set_script([fault])
    assert m.incr("n", 5) == 5
    proxy.set_script([fault])
    m.set_many({"a": 1, "b": 2})
    proxy.set_script([fault])
    with m.atomic() as tx:
        tx.append("h", "second").incr("n")
    proxy.set_script([fault])
    assert m.pop("h") == "second"
    proxy.set_script([fault])
    v = truth.entry("a").version  # type: ignore[union-attr]
    m.set("a", 10, if_version=v)  # a conditional write must not fail its own check on retry
    assert truth.get("h") == ["first"]
    assert truth.get("n") == 6
    assert truth.get_many(["a", "b"]) == {"a": 10, "b": 2}
    assert proxy.counts[fault] == 6


@pytest.mark.parametrize("fault", BREAKS)
def test_reads_are_retried(server: ServerProcess, proxy: FaultProxy, ns: str, fault: str) -> None:
    _direct(server, ns).set("k", {"v": 1})
    m = Memory(ns, url=proxy.url, timeout=5, retries=2)
    proxy.set_script([fault, fault])
    assert m.get("k") == {"v": 1}
    proxy.set_script([fault])
    assert m.list() == ["k"]
    assert proxy.counts[fault] == 3


def test_random_faults_lose_and_duplicate_nothing(
    server: ServerProcess, proxy: FaultProxy, ns: str
) -> None:
    proxy.faults = {"drop_before": 0.1, "drop_after": 0.1, "cut_response": 0.1, "reset": 0.05}
    m = Memory(ns, url=proxy.url, timeout=5, retries=8)
    for i in range(150):
        m.append("log", i)
        m.incr("count")
    assert _direct(server, ns).get("log") == list(range(150))
    assert _direct(server, ns).get("count") == 150
    assert sum(proxy.counts[a] for a in ("drop_before", "drop_after", "cut_response", "reset")) > 30


def test_stalled_server_raises_unavailable_within_the_deadline(proxy: FaultProxy, ns: str) -> None:
    proxy.set_script(["stall"] * 10)
    m = Memory(ns, url=proxy.url, timeout=0.3, retries=2)  # deadline 0.9 s
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        m.get("k")
    assert time.monotonic() - started < 5  # bounded by the deadline, never a hang
    assert proxy.url in str(info.value) and "BOTWIRE_URL" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.namespace == ns and info.value.key == "k"


def test_unreachable_server_raises_unavailable(ns: str, tmp_path: Path) -> None:
    from support.server import free_port

    m = Memory(ns, url=f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=1)
    with pytest.raises(Unavailable, match="could not be reached") as info:
        m.set("k", 1)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_keep_alive_connection_is_reused_and_a_dropped_one_replaced(
    server: ServerProcess, proxy: FaultProxy, ns: str
) -> None:
    m = Memory(ns, url=proxy.url, retries=0)  # the stale-connection retry needs no retry budget
    store = m._store
    for i in range(20):
        m.set(f"k{i}", i)
    assert store.connections_opened == 1  # type: ignore[attr-defined]
    proxy.set_script(["drop_before"])  # as a server closing an idle keep-alive connection
    m.append("h", 1)
    assert store.connections_opened == 2  # type: ignore[attr-defined]
    assert _direct(server, ns).get("h") == [1]


def test_quota_is_reported_at_once_not_retried(tmp_path: Path, ns: str) -> None:
    with running_server("--writes-per-day", "2", database=tmp_path / "q.db") as srv:
        m = Memory(ns, url=srv.url, retries=5)
        m.set("a", 1)
        m.set("b", 2)
        started = time.monotonic()
        with pytest.raises(QuotaExceeded) as info:
            m.set("c", 3)
        assert time.monotonic() - started < 5
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 86400
        assert info.value.namespace == ns


def test_async_client_applies_writes_exactly_once(
    server: ServerProcess, proxy: FaultProxy, ns: str
) -> None:
    from botwire import AsyncMemory

    async def main() -> None:
        async with AsyncMemory(ns, url=proxy.url, timeout=5, retries=3) as m:
            for fault in ["drop_after", "reset", "cut_response", "unavailable"]:
                proxy.set_script([fault])
                await m.append("h", fault)
                proxy.set_script([fault])
                await m.incr("n")
            proxy.set_script(["stall"] * 10)
            m2 = AsyncMemory(ns, url=proxy.url, timeout=0.3, retries=1)
            with pytest.raises(Unavailable):
                await m2.get("h")
            await m2.aclose()

    asyncio.run(main())
    assert _direct(server, ns).get("h") == ["drop_after", "reset", "cut_response", "unavailable"]
    assert _direct(server, ns).get("n") == 4
