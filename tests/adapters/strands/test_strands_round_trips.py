"""Round trips per message and per restore, counted at a real server.

Every request between the client and a real ``botwire-server`` goes through a counting relay
(``support.faultproxy.FaultProxy`` with no faults: ``counts["pass"]`` is the number of HTTP
requests). The figures must not grow with the conversation: S3's session manager does one PUT
per message and a LIST plus one GET per message to restore.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from scripted import make_agent
from strands.agent.conversation_manager import NullConversationManager
from strands.session import RepositorySessionManager, SnapshotSessionManager
from support.faultproxy import FaultProxy

from botwire_strands import BotWireSessionRepository, BotWireStorage


@pytest.fixture
def relay(shared_server_url: str) -> Iterator[FaultProxy]:
    port = urlsplit(shared_server_url).port
    assert port is not None
    with FaultProxy(port) as proxy:
        yield proxy


def _requests(relay: FaultProxy) -> int:
    return relay.counts["pass"]


def _repository_agent(url: str, ns: str, session: str) -> Any:
    repo = BotWireSessionRepository(ns, url=url)
    manager = RepositorySessionManager(session_id=session, session_repository=repo)
    # No trimming: the whole history is restored (the default sliding window keeps 40 messages).
    return make_agent(manager, tool=True, conversation_manager=NullConversationManager())


def _snapshot_agent(url: str, ns: str, session: str) -> Any:
    storage = BotWireStorage(ns, url=url)
    manager = SnapshotSessionManager(session, storage=storage)
    return make_agent(manager, tool=True, conversation_manager=NullConversationManager())


@pytest.mark.parametrize(
    "make", [_repository_agent, _snapshot_agent], ids=["repository", "snapshot"]
)
def test_round_trips_do_not_grow_with_the_conversation(relay: FaultProxy, make: Any) -> None:
    ns = f"strands-rt-{uuid.uuid4().hex[:8]}"
    name = make.__name__.strip("_").removesuffix("_agent")
    agent = make(relay.url, ns, "s")
    per_turn = []
    restores = {}
    for turn in range(1, 13):
        before = _requests(relay)
        agent(f"turn {turn}")  # 4 messages: user, toolUse, toolResult, answer
        per_turn.append(_requests(relay) - before)
        if turn in (1, 12):
            before = _requests(relay)
            restored = make(relay.url, ns, "s")
            restores[len(restored.messages)] = _requests(relay) - before
    print(
        f"FIGURE strands {name}: requests per turn of 4 messages {per_turn}; "
        f"requests per restore {restores} (messages: requests)"
    )
    # Every turn after the first costs the same, whatever the length of the history.
    assert len(set(per_turn[1:])) == 1, per_turn
    if name == "repository":
        # One append per message, plus one write of the agent record (its state changed).
        assert per_turn[-1] == 4 + 1, per_turn
        assert restores == {4: 2, 48: 2}  # read_session + read_agent (messages prefetched)
    else:
        assert per_turn[-1] == 1  # save_latest_on="invocation": one write of snapshot_latest
        assert restores == {4: 1, 48: 1}  # one read of snapshot_latest


def test_storage_search_reads_in_one_round_trip_per_thousand_keys(relay: FaultProxy) -> None:
    storage = BotWireStorage(f"strands-rt-{uuid.uuid4().hex[:8]}", url=relay.url)

    async def run() -> tuple[int, int]:
        for i in range(30):
            await storage.write(f"notes/n{i}.md", f"note {i} about dark mode".encode())
        before = _requests(relay)
        results = await storage.search("dark mode toggle")
        return len(results), _requests(relay) - before

    found, requests = asyncio.run(run())
    print(f"FIGURE strands storage search over 30 keys: {requests} requests")
    assert found == 30 and requests == 2  # list + get_many (Strands' default: 1 + 30)


@pytest.mark.parametrize("kind", ["repository", "snapshot"])
def test_a_fenced_invocation_costs_the_lease_and_nothing_per_message(
    relay: FaultProxy, kind: str
) -> None:
    """With the guard fencing every write, a turn costs exactly what it costs unfenced, plus
    one request to take the lease and one to release it."""
    ns = f"strands-rt-{uuid.uuid4().hex[:8]}"
    per_invocation = []
    for turn in range(1, 5):
        before = _requests(relay)
        store: Any = (BotWireSessionRepository if kind == "repository" else BotWireStorage)(
            ns, url=relay.url
        )
        with store.guard("s", ttl=60):
            if kind == "repository":
                manager: Any = RepositorySessionManager(session_id="s", session_repository=store)
            else:
                manager = SnapshotSessionManager("s", storage=store)
            agent = make_agent(manager, tool=True, conversation_manager=NullConversationManager())
            agent(f"turn {turn}")
        per_invocation.append(_requests(relay) - before)
    print(
        f"FIGURE strands {kind} fenced: requests per invocation (lease, restore, 4 messages, "
        f"release) {per_invocation}"
    )
    assert len(set(per_invocation[1:])) == 1, per_invocation
    # lease + restore + the turn's writes + release. A fresh RepositorySessionManager writes the
    # agent record twice in its first turn (as turn 1 of the unfenced test: 6 = 4 + 2).
    expected = 1 + 2 + (4 + 2) + 1 if kind == "repository" else 1 + 1 + 1 + 1
    assert per_invocation[-1] == expected, per_invocation
