"""Hand-off queues over a broken network: a real server behind the fault-injecting proxy
(``support.faultproxy``). A response lost after the server applied a put, a claim or an ack is
retried by the client with the same idempotency key, so nothing is applied twice and the caller
sees success, never a false ``ClaimExpired``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faultproxy import FaultProxy
from support.server import ServerProcess, running_server

from botwire import Memory, QueueStats


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path / "q.db") as s:
        yield s


@pytest.mark.parametrize("fault", ["drop_after", "reset", "cut_response"])
def test_lost_answers_apply_once(server: ServerProcess, ns: str, fault: str) -> None:
    with (
        FaultProxy(server.port) as proxy,
        Memory(ns, url=proxy.url, retries=3) as memory,
        Memory(ns, url=server.url) as direct,
    ):
        q, truth = memory.queue("jobs"), direct.queue("jobs")
        proxy.set_script([fault])  # the put's answer is lost; the server applied it
        ident = q.put({"n": 1})
        assert truth.stats() == QueueStats(1, 0, 0, 0)  # one item, not two
        proxy.set_script(["pass", fault])  # the claim's listing passes, its batch's answer is lost
        c = q.claim(visibility=60)
        assert c is not None and c.id == ident and c.claims == 1  # one claim, not two
        proxy.set_script([fault])  # the ack's answer is lost
        q.ack(c)  # the retry replays the first answer: no false ClaimExpired
        assert truth.stats() == QueueStats(0, 0, 0, 0)
        assert direct.list(".botwire/queue/") == []
        assert proxy.counts[fault] == 3
