"""examples/cloud_run: the FastAPI service under uvicorn, each instance a fresh process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.harness import (
    EXAMPLES,
    Platform,
    Server,
    free_port,
    stop,
    tcp_connections,
    wait_http,
)

APP_DIR = EXAMPLES / "cloud_run"


@pytest.fixture
def cloud_run(
    tmp_path_factory: pytest.TempPathFactory, server: Server, user_token: str
) -> Platform:
    """Cloud Run's environment (K_SERVICE, PORT...) plus the service's BOTWIRE_*."""
    return Platform(
        tmp_path_factory,
        {
            "K_SERVICE": "botwire-agent",
            "K_REVISION": "botwire-agent-00001",
            "BOTWIRE_URL": server.url,
            "BOTWIRE_TOKEN": user_token,
            "BOTWIRE_TIMEOUT": "10",
            "BOTWIRE_RETRIES": "1",
        },
    )


@contextmanager
def instance(cloud_run: Platform, **env: str) -> Iterator[Instance]:
    """One container instance: ``uvicorn main:app`` in a fresh process with a fresh home."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=APP_DIR,
        env=cloud_run.fresh_env(PORT=str(port), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", proc, "the Cloud Run example")
        with httpx.Client(base_url=base, timeout=60) as client:
            yield Instance(client, proc.pid)
    finally:
        stop(proc)


class Instance:
    """A running instance: an HTTP client for it and its process id."""

    def __init__(self, client: httpx.Client, pid: int) -> None:
        self.client, self.pid = client, pid

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)


def chat(client: Instance, user: str, message: str) -> str:
    r = client.post("/chat", json={"user_id": user, "message": message})
    assert r.status_code == 200, r.text
    return str(r.json()["response"])


def uid() -> str:
    return uuid.uuid4().hex[:12]


def test_three_instances_build_a_three_turn_history(cloud_run: Platform, reader: Any) -> None:
    user = uid()
    answers = []
    for message in ("call me Grace", "what is botwire?", "thanks"):
        with instance(cloud_run) as client:  # scaled to zero in between: a new instance each time
            answers.append(chat(client, user, message))

    assert answers[0] == "Hello Grace! This is our first conversation."
    assert "Hi Grace" in answers[1] and "talked 1 time(s)" in answers[1]
    assert "talked 2 time(s)" in answers[2]
    memory = reader(f"user-{user}")
    assert [t["user"] for t in memory.get("chat_history")] == [
        "call me Grace",
        "what is botwire?",
        "thanks",
    ]
    assert memory.get("preferences") == {"name": "Grace"}
    with instance(cloud_run) as client:
        turns = client.get(f"/users/{user}/history", params={"last": 2}).json()["turns"]
    assert [t["user"] for t in turns] == ["what is botwire?", "thanks"]


def test_two_users_never_see_each_other(cloud_run: Platform, reader: Any) -> None:
    alice, bob = uid(), uid()
    with instance(cloud_run) as client:
        chat(client, alice, "call me Alice")
        chat(client, alice, "my secret is 1234")
    with instance(cloud_run) as client:
        assert chat(client, bob, "hello") == "Hello there! This is our first conversation."
        turns = client.get(f"/users/{bob}/history").json()["turns"]
    assert [t["user"] for t in turns] == ["hello"]
    assert reader(f"user-{bob}").get("preferences") is None
    assert len(reader(f"user-{alice}").get("chat_history")) == 2


def test_concurrent_requests_on_one_instance_lose_no_message(
    cloud_run: Platform, reader: Any
) -> None:
    import concurrent.futures

    user, n = uid(), 12
    with instance(cloud_run) as client, concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: chat(client, user, f"message {i}"), range(n)))
    history = reader(f"user-{user}").get("chat_history")
    assert sorted(t["user"] for t in history) == sorted(f"message {i}" for i in range(n))


def test_read_only_token_fails_with_a_clear_forbidden(
    cloud_run: Platform, server: Server, reader: Any
) -> None:
    user = uid()
    with instance(cloud_run, BOTWIRE_TOKEN=server.token("user-*", read_only=True)) as client:
        r = client.post("/chat", json={"user_id": user, "message": "hello"})
    assert r.status_code == 500
    assert r.json()["error"] == "Forbidden"
    assert f"user-{user}" in r.json()["message"]
    assert reader(f"user-{user}").list() == []


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")
def test_warm_instance_reuses_its_connection_to_botwire(
    cloud_run: Platform, server: Server
) -> None:
    """Sequential requests on one instance go over the same keep-alive TCP connection."""
    port = int(server.url.rsplit(":", 1)[1])
    seen: list[set[int]] = []
    with instance(cloud_run) as client:
        for i in range(5):
            chat(client, uid(), f"request {i}")
            seen.append(tcp_connections(client.pid, port))
    assert len(seen[0]) == 1, seen
    assert all(ports == seen[0] for ports in seen), seen
