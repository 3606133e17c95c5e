"""Real Strands agents (scripted model) persisted in botwire and restored in a fresh process.

``SnapshotSessionManager`` over ``BotWireStorage`` and ``RepositorySessionManager`` over
``BotWireSessionRepository``: the parent runs turn 1 in-process, a fresh Python process (the
next serverless invocation: nothing shared but ``BOTWIRE_URL``) restores and runs turn 2 of both
sessions, and the parent restores again and sees turn 2.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from scripted import make_agent, reply_text
from strands.session import RepositorySessionManager, SnapshotSessionManager

from botwire import Memory
from botwire_strands import BotWireSessionRepository, BotWireStorage


def _result(proc: Any) -> list[dict[str, Any]]:
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _snapshot_agent(namespace: str, url: str, session: str) -> Any:
    storage = BotWireStorage(namespace, url=url)
    return make_agent(SnapshotSessionManager(session, storage=storage), tool=True)


def _repository_agent(namespace: str, url: str, session: str) -> Any:
    repo = BotWireSessionRepository(namespace, url=url)
    manager = RepositorySessionManager(session_id=session, session_repository=repo)
    return make_agent(manager, tool=True)


def test_both_session_managers_restore_in_a_fresh_process(
    run_script: Any, memory_url: str, namespace: str
) -> None:
    snap = _snapshot_agent(namespace, memory_url, "chat:snap 1")  # ':', ' ', '%2F' in ids
    assert "history 3" in reply_text(snap("plan the trip"))  # user, toolUse, toolResult
    repo = _repository_agent(namespace, memory_url, "chat:repo 1%2F")
    repo("plan the trip")
    first_len = len(repo.messages)
    assert len(snap.messages) == first_len == 4

    proc = run_script(
        "strands_app.py",
        namespace,
        "snapshot+tool",
        "chat:snap 1",
        "book the hotel",
        "repository+tool",
        "chat:repo 1%2F",
        "book the hotel",
    )
    for turn in _result(proc):
        assert turn["restored"] == 4  # turn 1 (with its tool pair) came back in the new process
        assert turn["messages"] == 8
        assert turn["texts"][0] == "plan the trip" and "book the hotel" in turn["texts"]
        assert "history 7" in turn["reply"]  # the model was sent the restored history

    # And back in this process, with fresh managers: turn 2 is there, tool pairs intact.
    for again in (
        _snapshot_agent(namespace, memory_url, "chat:snap 1"),
        _repository_agent(namespace, memory_url, "chat:repo 1%2F"),
    ):
        assert len(again.messages) == 8
        uses = [
            b["toolUse"]["toolUseId"]
            for m in again.messages
            for b in m["content"]
            if "toolUse" in b
        ]
        results = [
            b["toolResult"]["toolUseId"]
            for m in again.messages
            for b in m["content"]
            if "toolResult" in b
        ]
        assert uses == results and len(uses) == 2
        assert "history 11" in reply_text(again("and the car"))


def test_repository_stores_one_list_item_per_message(memory: Memory) -> None:
    repo = BotWireSessionRepository(memory=memory)
    agent = make_agent(RepositorySessionManager(session_id="s", session_repository=repo))
    for i in range(3):
        agent(f"turn {i}")
    items = memory.get("s/agents/default/messages")
    assert [item["message_id"] for item in items] == list(range(6))
    assert sorted(memory.list()) == [
        "s/agents/default/agent",
        "s/agents/default/messages",
        "s/session",
    ]
    restored = repo.list_messages("s", "default", offset=2, limit=2)
    assert [m.message_id for m in restored] == [2, 3]
    assert repo.read_message("s", "default", 4).message["content"][0]["text"] == "turn 2"
    assert repo.read_message("s", "default", 99) is None


def test_redaction_survives_restore(memory: Memory) -> None:
    repo = BotWireSessionRepository(memory=memory)
    manager = RepositorySessionManager(session_id="s", session_repository=repo)
    agent = make_agent(manager)
    agent("my card is 4111 1111 1111 1111")
    # A guardrail redacts the user's message after the fact (what Agent does on a redaction).
    redacted = {"role": "user", "content": [{"text": "[REDACTED]"}]}
    manager._latest_agent_message["default"] = repo.read_message("s", "default", 0)
    manager.redact_latest_message(redacted, agent)
    fresh = BotWireSessionRepository(memory=memory)
    again = make_agent(RepositorySessionManager(session_id="s", session_repository=fresh))
    assert again.messages[0]["content"] == [{"text": "[REDACTED]"}]
    assert "4111" not in json.dumps(again.messages[0])  # (the scripted reply echoes it)


def test_a_retried_append_is_not_a_second_message(memory: Memory) -> None:
    """A network retry of an append that had landed leaves the item twice in the list; a
    restore must still see each message once, in order."""
    repo = BotWireSessionRepository(memory=memory)
    agent = make_agent(RepositorySessionManager(session_id="s", session_repository=repo))
    agent("hello")
    first = memory.get("s/agents/default/messages")[0]
    memory.append("s/agents/default/messages", first)
    again = make_agent(RepositorySessionManager(session_id="s", session_repository=repo))
    assert [m["role"] for m in again.messages] == ["user", "assistant"]


def test_create_session_twice_is_refused_and_delete_removes_everything(memory: Memory) -> None:
    from strands.types.exceptions import SessionException
    from strands.types.session import Session, SessionType

    repo = BotWireSessionRepository(memory=memory)
    make_agent(RepositorySessionManager(session_id="s", session_repository=repo))("hi")
    with pytest.raises(SessionException, match="already exists"):
        repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    memory.set("s2/session", {"kept": True})  # another session whose id starts the same
    repo.delete_session("s")
    assert memory.list() == ["s2/session"]
    with pytest.raises(SessionException, match="does not exist"):
        repo.delete_session("s")


def test_an_agent_left_alive_after_its_session_was_deleted_cannot_write_into_a_new_one(
    memory: Memory,
) -> None:
    """A warm container keeps an agent object after another invocation "clears the chat"
    (delete_session): its next turn used to write the deleted conversation's messages back,
    and a new conversation on the same id then restored them among its own."""
    from strands.types.exceptions import SessionException

    old = make_agent(RepositorySessionManager("s1", BotWireSessionRepository(memory=memory)))
    old("my password is hunter2")
    BotWireSessionRepository(memory=memory).delete_session("s1")  # another invocation
    with pytest.raises(SessionException, match="was deleted"):
        old("and my pin is 1234")
    assert memory.list() == []  # nothing written back
    new = make_agent(RepositorySessionManager("s1", BotWireSessionRepository(memory=memory)))
    new("hello, new conversation")
    with pytest.raises(SessionException, match="deleted, or deleted and created anew"):
        old("still here")  # nor into the session created anew under the same id
    restored = make_agent(RepositorySessionManager("s1", BotWireSessionRepository(memory=memory)))
    said = json.dumps(restored.messages)
    assert "hello, new conversation" in said and "hunter2" not in said and "1234" not in said


def test_ids_never_share_keys_and_a_guard_must_share_the_namespace(memory: Memory) -> None:
    """Used directly (not through a Strands manager, which refuses '/'), session ids that differ
    only by an encoded slash stay apart."""
    from strands.types.session import Session, SessionType

    from botwire_strands import InvocationGuard

    repo = BotWireSessionRepository(memory=memory)
    for sid in ("a/b", "a%2Fb", "a"):
        repo.create_session(Session(session_id=sid, session_type=SessionType.AGENT))
    assert sorted(memory.list()) == ["a%252Fb/session", "a%2Fb/session", "a/session"]
    repo.delete_session("a")
    assert repo.read_session("a/b") is not None and repo.read_session("a%2Fb") is not None
    other = InvocationGuard("s", namespace="strands-elsewhere", url=memory.url)
    with pytest.raises(ValueError, match="same botwire namespace"):
        BotWireSessionRepository(memory=memory, guard=other)
