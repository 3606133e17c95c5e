"""examples/aws_lambda: every invocation a fresh process against a real botwire server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from e2e.harness import EXAMPLES, RUNTIMES, Platform, Run, Server, parse_run

TASK_ROOT = EXAMPLES / "aws_lambda"
RUNTIME = str(RUNTIMES / "lambda_runtime.py")


LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "botwire-example", "AWS_REGION": "us-east-1"}


@pytest.fixture
def lam(tmp_path_factory: pytest.TempPathFactory, server: Server, user_token: str) -> Platform:
    """Lambda's environment: the runtime's variables plus the template's BOTWIRE_*."""
    return Platform(
        tmp_path_factory,
        {
            **LAMBDA_ENV,
            "BOTWIRE_URL": server.url,
            "BOTWIRE_TOKEN": user_token,
            "BOTWIRE_TIMEOUT": "10",
            "BOTWIRE_RETRIES": "1",
        },
    )


def invoke(lam: Platform, *events: dict[str, Any], **env: str) -> Run:
    """One container (a fresh process, a fresh home) handling ``events`` in order."""
    return lam.run(
        [RUNTIME, str(TASK_ROOT), "handler.lambda_handler", json.dumps(list(events))],
        cwd=TASK_ROOT,
        env=lam.fresh_env(**env),
    )


def cold(lam: Platform, user_id: str, message: str) -> str:
    """One cold invocation; returns the response text."""
    run = invoke(lam, {"user_id": user_id, "message": message})
    assert run.returncode == 0, run.results or run.stderr
    return str(run.results[0]["ok"]["response"])


def uid() -> str:
    return uuid.uuid4().hex[:12]


def test_three_cold_invocations_build_a_three_turn_history(lam: Platform, reader: Any) -> None:
    user = uid()
    first = cold(lam, user, "call me Ada")
    second = cold(lam, user, "what is botwire?")
    third = cold(lam, user, "thanks")

    assert first == "Hello Ada! This is our first conversation."
    # Each fresh process saw what the previous ones stored: history and preferences.
    assert "Hi Ada" in second and "talked 1 time(s)" in second and "'call me Ada'" in second
    assert "talked 2 time(s)" in third

    memory = reader(f"user-{user}")
    history = memory.get("chat_history")
    assert [t["user"] for t in history] == ["call me Ada", "what is botwire?", "thanks"]
    assert [t["assistant"] for t in history] == [first, second, third]
    assert len({t["request_id"] for t in history}) == 3  # three distinct invocations
    assert memory.get("preferences") == {"name": "Ada"}
    assert memory.get("last_interaction")["request_id"] == history[-1]["request_id"]


def test_two_users_never_see_each_others_data(lam: Platform, reader: Any) -> None:
    alice, bob = uid(), uid()
    # A secret no timestamp or id can hold by chance: "1234" once matched the digits of a
    # float timestamp in Bob's own data (1796382374.6123421), a leak that was not one.
    secret = f"zebra-{uuid.uuid4().hex}"
    cold(lam, alice, "call me Alice")
    cold(lam, alice, f"my secret is {secret}")
    reply_to_bob = cold(lam, bob, "hello")

    assert reply_to_bob == "Hello there! This is our first conversation."
    bob_memory = reader(f"user-{bob}")
    assert [t["user"] for t in bob_memory.get("chat_history")] == ["hello"]
    assert bob_memory.get("preferences") is None
    everything_of_bob = json.dumps(bob_memory.get_many(bob_memory.list()))
    assert secret not in everything_of_bob and "Alice" not in everything_of_bob
    alice_history = reader(f"user-{alice}").get("chat_history")
    assert [t["user"] for t in alice_history] == ["call me Alice", f"my secret is {secret}"]


def test_concurrent_invocations_for_one_user_lose_no_message(lam: Platform, reader: Any) -> None:
    user, n = uid(), 6
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                RUNTIME,
                str(TASK_ROOT),
                "handler.lambda_handler",
                json.dumps([{"user_id": user, "message": f"message {i}"}]),
            ],
            cwd=TASK_ROOT,
            env=lam.fresh_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert parse_run(subprocess.CompletedProcess(p.args, 0, out, err)).results[0]["ok"]

    history = reader(f"user-{user}").get("chat_history")
    assert sorted(t["user"] for t in history) == [f"message {i}" for i in range(n)]


def test_read_only_token_fails_with_a_clear_forbidden(
    lam: Platform, server: Server, reader: Any
) -> None:
    user = uid()
    run = invoke(
        lam,
        {"user_id": user, "message": "hello"},
        BOTWIRE_TOKEN=server.token("user-*", read_only=True),
    )

    assert run.returncode == 1
    [result] = run.results
    assert (result["error_module"], result["error"]) == ("botwire._errors", "Forbidden")
    assert result["namespace"] == f"user-{user}"
    assert f"user-{user}" in result["message"]
    assert reader(f"user-{user}").list() == []  # nothing was half-written


def test_warm_container_reuses_one_http_connection(lam: Platform, reader: Any) -> None:
    alice, bob = uid(), uid()
    events = [
        {"user_id": alice, "message": "call me Alice"},
        {"user_id": bob, "message": "hi"},
        {"user_id": alice, "message": "again"},
        {"user_id": alice, "message": "and again"},
        {"user_id": bob, "message": "bye"},
    ]
    run = invoke(lam, *events)

    assert run.returncode == 0, run.results
    assert [("ok" in r) for r in run.results] == [True] * 5
    assert "talked 2 time(s)" in run.results[3]["ok"]["response"]
    # one connection opened, and still open for the next warm invocation
    assert run.stats == {"backend": "HTTPStore", "connections_opened": 1, "connections_open": 1}
    assert len(reader(f"user-{alice}").get("chat_history")) == 3
    assert len(reader(f"user-{bob}").get("chat_history")) == 2


def test_without_a_server_memory_does_not_survive_a_cold_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The embedded default inside Lambda: a warning naming BOTWIRE_URL, and amnesia."""
    lam, user = Platform(tmp_path_factory, LAMBDA_ENV), uid()
    first = lam.run(
        [
            RUNTIME,
            str(TASK_ROOT),
            "handler.lambda_handler",
            json.dumps([{"user_id": user, "message": "call me Ada"}]),
        ],
        cwd=TASK_ROOT,
    )
    assert first.returncode == 0 and first.stats["backend"] == "SQLiteStore"
    assert "BotWireWarning" in first.stderr and "BOTWIRE_URL" in first.stderr
    second = lam.run(
        [
            RUNTIME,
            str(TASK_ROOT),
            "handler.lambda_handler",
            json.dumps([{"user_id": user, "message": "hello again"}]),
        ],
        cwd=TASK_ROOT,
    )
    assert second.results[0]["ok"]["response"] == "Hello there! This is our first conversation."
