"""The opt-in double-invocation guard (``InvocationGuard``) across real processes.

A Lambda function "triggered twice for a single session-id" must not interleave two histories:
the second invocation fails fast with ``SessionBusy`` before it reads or writes the session, a
crashed holder's lease expires on its own, and a holder whose lease expired cannot write any more
(``LeaseLost``) once the repository is fenced on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted import make_agent, reply_text
from strands.session import RepositorySessionManager, SnapshotSessionManager
from strands_app import handler

from botwire import Memory
from botwire_strands import (
    GUARD_PREFIX,
    BotWireSessionRepository,
    BotWireStorage,
    InvocationGuard,
    LeaseLost,
    SessionBusy,
)

HERE = Path(__file__).resolve().parent


def _start(args: list[str], memory_url: str) -> subprocess.Popen[str]:
    env = dict(os.environ, BOTWIRE_URL=memory_url, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(HERE / "guard_worker.py"), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"worker exited early:\n{out}\n{err}")
        assert time.monotonic() < deadline, "worker never acquired the lease"
        time.sleep(0.02)


def test_second_invocation_fails_fast_and_a_crashed_holder_expires(
    memory_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process 1 holds the session (an invocation in progress), then crashes; the test process
    is invocation 2, running the docs' handler."""
    monkeypatch.setenv("BOTWIRE_URL", memory_url)  # the handler reads it, as on Lambda
    ready = tmp_path / "ready"
    holder = _start(["hold-forever", namespace, "sess-1", "3", str(ready)], memory_url)
    try:
        _wait_for(ready, holder)
        started = time.perf_counter()
        with pytest.raises(SessionBusy) as busy:
            handler("repository", namespace, "sess-1", "second", tool=False)
        print(
            f"FIGURE strands guard: second invocation refused in "
            f"{(time.perf_counter() - started) * 1000:.1f} ms ({memory_url.split(':')[0]})"
        )
        message = str(busy.value)
        assert "'sess-1'" in message and "worker-hold-forever" in message
        assert "Retry after" in message and namespace in message
        assert busy.value.holder is not None and busy.value.holder["pid"] == holder.pid
        with Memory(namespace, url=memory_url) as m:  # it read and wrote nothing of the session
            assert m.list() == [GUARD_PREFIX + "sess-1"]
    finally:
        holder.send_signal(signal.SIGKILL)  # a Lambda timeout / OOM kill: no release
        holder.communicate(timeout=30)
    started = time.monotonic()
    while True:  # no timed assertion: poll until the crashed holder's 3 s lease has expired
        try:
            result = handler("repository", namespace, "sess-1", "third", tool=False)
            break
        except SessionBusy:
            assert time.monotonic() - started < 60, "the crashed holder's lease never expired"
            time.sleep(0.2)
    print(
        f"FIGURE strands guard: crashed holder's 3 s lease taken over after "
        f"{time.monotonic() - started:.1f} s of polling"
    )
    assert "heard third" in result["reply"] and result["restored"] == 0
    with Memory(namespace, url=memory_url) as m:  # released after the invocation
        assert GUARD_PREFIX + "sess-1" not in m.list()


def test_lease_lost_mid_invocation_fences_the_late_writer(memory_url: str, namespace: str) -> None:
    repo_a = BotWireSessionRepository(namespace, url=memory_url)
    guard_a = repo_a.guard("sess-3", ttl=60, owner="A")
    guard_a.acquire()
    agent_a = make_agent(RepositorySessionManager(session_id="sess-3", session_repository=repo_a))
    agent_a("first from A")
    # A's lease runs out (as if its TTL passed) and invocation B takes the session over.
    repo_a.memory.delete(guard_a.key)
    repo_b = BotWireSessionRepository(namespace, url=memory_url)
    guard_b = repo_b.guard("sess-3", ttl=60, owner="B")
    guard_b.acquire()
    agent_b = make_agent(RepositorySessionManager(session_id="sess-3", session_repository=repo_b))
    assert len(agent_b.messages) == 2
    with pytest.raises(LeaseLost, match="sess-3"):
        agent_a("late write from A")
    agent_b("then B")
    guard_b.release()
    texts = [
        m.message["content"][0].get("text", "") for m in repo_b.list_messages("sess-3", "default")
    ]
    assert texts[0] == "first from A" and texts[2] == "then B" and len(texts) == 4
    assert not any("late write" in t for t in texts)


def test_guard_as_agent_hook_refuses_before_the_model_runs(memory_url: str, namespace: str) -> None:
    other = InvocationGuard("sess-4", namespace=namespace, url=memory_url, owner="other")
    other.acquire()
    mine = InvocationGuard("sess-4", namespace=namespace, url=memory_url, owner="mine")
    agent = make_agent(hooks=[mine])
    with pytest.raises(SessionBusy, match="'other'"):
        agent("hello")
    assert agent.model.calls == 0
    other.release()
    assert "heard hello" in reply_text(agent("hello"))
    assert not mine.held  # released after the invocation
    with Memory(namespace, url=memory_url) as m:
        assert m.list() == []


def test_platform_retry_with_the_same_owner_takes_its_lease_over(
    memory_url: str, namespace: str
) -> None:
    first = InvocationGuard("sess-5", namespace=namespace, url=memory_url, owner="req-1")
    first.acquire()  # ... and the invocation crashes without releasing
    retry = InvocationGuard("sess-5", namespace=namespace, url=memory_url, owner="req-1")
    retry.acquire()
    with pytest.raises(SessionBusy):
        InvocationGuard("sess-5", namespace=namespace, url=memory_url, owner="req-2").acquire()
    retry.release()
    with pytest.raises(LeaseLost):  # the crashed attempt can no longer free the retry's lease
        first.renew()


def test_as_a_hook_every_session_write_happens_under_the_lease(
    memory_url: str, namespace: str
) -> None:
    """Strands runs AfterInvocation callbacks in reverse registration order and registers the
    session manager before ``hooks=``: a release at default priority would come before the
    manager's final save, leaving it unguarded."""
    held_at_write: list[bool] = []

    class Spy(BotWireStorage):
        async def write(self, key: str, data: bytes) -> None:
            held_at_write.append(self.memory.get(GUARD_PREFIX + "sess-6") is not None)
            await super().write(key, data)

    guard = InvocationGuard("sess-6", namespace=namespace, url=memory_url)
    storage = Spy(namespace, url=memory_url)
    for _ in range(2):
        agent = make_agent(SnapshotSessionManager("sess-6", storage=storage), hooks=[guard])
        agent("hello")
    assert held_at_write and all(held_at_write), held_at_write
    assert not guard.held


def test_snapshot_storage_fenced_on_the_lease_refuses_a_late_save(
    memory_url: str, namespace: str
) -> None:
    storage_a = BotWireStorage(namespace, url=memory_url)
    agent_a = make_agent(SnapshotSessionManager("sess-7", storage=storage_a))
    guard_a = storage_a.guard("sess-7", ttl=60, owner="A")  # set after the manager's view
    guard_a.acquire()
    agent_a("first from A")
    storage_a.memory.delete(guard_a.key)  # A's lease runs out; B takes the session over
    storage_b = BotWireStorage(namespace, url=memory_url)
    guard_b = storage_b.guard("sess-7", ttl=60, owner="B")
    guard_b.acquire()
    agent_b = make_agent(SnapshotSessionManager("sess-7", storage=storage_b))
    agent_b("then B")
    with pytest.raises(LeaseLost, match="sess-7"):
        agent_a("late write from A")
    guard_b.release()
    restored = make_agent(SnapshotSessionManager("sess-7", storage=storage_b))
    texts = [b["text"] for m in restored.messages for b in m["content"] if "text" in b]
    assert texts[0] == "first from A" and texts[2] == "then B" and len(texts) == 4


def test_the_guard_is_the_core_lease(memory_url: str, namespace: str) -> None:
    """One definition of a lease (issue 18): the guard and ``memory.lease`` exclude each other,
    and the guard's fence is the core lease's token."""
    from botwire import Conflict, Lease

    guard = InvocationGuard("sess-9", namespace=namespace, url=memory_url, ttl=60, owner="g")
    assert isinstance(guard.lease, Lease) and guard.key.startswith(".botwire/lease/")
    token = guard.acquire()
    assert token == guard.version == guard.lease.token
    with Memory(namespace, url=memory_url) as m:
        with pytest.raises(Conflict, match="'g'"):
            m.lease(guard.lease.name).acquire()
        m.set("note", "guarded", fence=guard.lease)
        assert guard.renew() > token
        with pytest.raises(Conflict):  # the old token no longer matches the lease key
            m.atomic().check(guard.key, token).set("note", "stale").commit()
        assert m.get("note") == "guarded"
    guard.release()
    with Memory(namespace, url=memory_url) as m, m.lease(guard.lease.name) as core:
        with pytest.raises(SessionBusy):
            guard.acquire()
        assert core.held
