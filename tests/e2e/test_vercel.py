"""examples/vercel: real HTTP requests to the function, each instance a fresh process."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from e2e.harness import EXAMPLES, RUNTIMES, Platform, Run, Server

API_FILE = EXAMPLES / "vercel" / "api" / "chat.py"
RUNTIME = str(RUNTIMES / "vercel_runtime.py")
VERCEL_ENV = {"VERCEL": "1", "VERCEL_ENV": "production", "VERCEL_REGION": "iad1"}


@pytest.fixture(scope="module")
def chat_token(server: Server) -> str:
    """The function's token: read and write on ``chat-*`` only."""
    return server.token("chat-*")


@pytest.fixture
def vercel(tmp_path_factory: pytest.TempPathFactory, server: Server, chat_token: str) -> Platform:
    return Platform(
        tmp_path_factory,
        {
            **VERCEL_ENV,
            "BOTWIRE_URL": server.url,
            "BOTWIRE_TOKEN": chat_token,
            "BOTWIRE_TIMEOUT": "10",
            "BOTWIRE_RETRIES": "1",
        },
    )


def serve(vercel: Platform, *requests: dict[str, Any], **env: str) -> Run:
    """One function instance (a fresh process and home) answering ``requests`` over HTTP."""
    return vercel.run(
        [RUNTIME, str(API_FILE), json.dumps(list(requests))],
        cwd=API_FILE.parent.parent,
        env=vercel.fresh_env(**env),
    )


def say(session: str, message: str) -> dict[str, Any]:
    return {"headers": {"x-session-id": session}, "body": {"message": message}}


def cold(vercel: Platform, session: str, message: str) -> str:
    run = serve(vercel, say(session, message))
    assert run.returncode == 0, (run.results, run.stderr)
    [result] = run.results
    assert result["status"] == 200 and result["body"]["session_id"] == session
    return str(result["body"]["response"])


def stored(reader: Any, session: str) -> list[tuple[str, str]]:
    """The session's history as (type, content) pairs, read from the server directly."""
    raw = reader(f"chat-{session}").get(f"langchain/chat/chat-{session}") or []
    return [(m["type"], m["data"]["content"]) for m in raw]


def sid() -> str:
    return uuid.uuid4().hex[:12]


def test_three_cold_requests_build_a_three_turn_history(vercel: Platform, reader: Any) -> None:
    session = sid()
    answers = [cold(vercel, session, m) for m in ("Hi, I am Ada", "I like tea", "Who am I?")]

    assert answers[0] == "Nice to meet you! You said 'Hi, I am Ada'."
    # The model in each fresh process was given the turns stored by the earlier ones.
    assert answers[1] == "Message 2 noted ('I like tea'); your first one was 'Hi, I am Ada'."
    assert answers[2] == "Message 3 noted ('Who am I?'); your first one was 'Hi, I am Ada'."
    assert stored(reader, session) == [
        ("human", "Hi, I am Ada"),
        ("ai", answers[0]),
        ("human", "I like tea"),
        ("ai", answers[1]),
        ("human", "Who am I?"),
        ("ai", answers[2]),
    ]


def test_two_sessions_never_see_each_other(vercel: Platform, reader: Any) -> None:
    a, b = sid(), sid()
    cold(vercel, a, "my password is hunter2")
    cold(vercel, a, "remember it")
    assert cold(vercel, b, "hello") == "Nice to meet you! You said 'hello'."
    assert stored(reader, b) == [("human", "hello"), ("ai", "Nice to meet you! You said 'hello'.")]
    assert "hunter2" not in json.dumps(reader(f"chat-{b}").get_many(reader(f"chat-{b}").list()))
    assert [c for t, c in stored(reader, a) if t == "human"] == [
        "my password is hunter2",
        "remember it",
    ]


def test_read_only_token_fails_with_a_clear_forbidden(
    vercel: Platform, server: Server, reader: Any
) -> None:
    session = sid()
    run = serve(vercel, say(session, "hello"), BOTWIRE_TOKEN=server.token("chat-*", read_only=True))

    [result] = run.results
    assert result["status"] == 500
    assert result["body"]["error"] == "Forbidden"
    assert f"chat-{session}" in result["body"]["message"]
    assert "Forbidden" in run.stderr  # logged by the function, as Vercel would show it
    assert stored(reader, session) == []


def test_bad_requests_are_refused_before_touching_memory(vercel: Platform) -> None:
    run = serve(
        vercel,
        {"headers": {}, "body": {"message": "hi"}},
        {"headers": {"x-session-id": sid()}, "body": "not json"},
    )
    assert [r["status"] for r in run.results] == [400, 400]
    assert run.stats["connections_opened"] == 0


def test_warm_instance_serves_every_request(vercel: Platform, reader: Any) -> None:
    a, b = sid(), sid()
    run = serve(vercel, say(a, "one"), say(b, "uno"), say(a, "two"), say(a, "three"), say(b, "dos"))

    assert run.returncode == 0, run.results
    assert [r["status"] for r in run.results] == [200] * 5
    third = run.results[3]["body"]["response"]
    assert third == "Message 3 noted ('three'); your first one was 'one'."
    assert len(stored(reader, a)) == 6 and len(stored(reader, b)) == 4


def test_warm_instance_reuses_one_http_connection(vercel: Platform) -> None:
    a = sid()
    run = serve(vercel, *(say(a, f"message {i}") for i in range(5)))

    assert [r["status"] for r in run.results] == [200] * 5
    assert run.stats["connections_open"] <= 1, run.stats  # no socket left behind per request
    assert run.stats["connections_opened"] == 1, run.stats
