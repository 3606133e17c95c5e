"""examples/langchain_vercel_chat.py runs as documented (scripted model, no network)."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import subprocess
import sys
import threading
from http.server import HTTPServer
from pathlib import Path

import pytest

from botwire_langchain import BotWireChatHistory

EXAMPLE = Path(__file__).parents[3] / "examples" / "langchain_vercel_chat.py"


def _run(memory_url: str, session: str, message: str) -> dict:
    env = dict(os.environ, BOTWIRE_URL=memory_url, BOTWIRE_EXAMPLE_FAKE_MODEL="1")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), session, message],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_invocations_share_the_history(memory_url: str, namespace: str) -> None:
    first = _run(memory_url, namespace, "Hi, I am Ada")
    assert first == {"response": "Nice to meet you!", "messages_in_history": 2}
    second = _run(memory_url, namespace, "Who am I?")
    assert second["messages_in_history"] == 4
    stored = BotWireChatHistory(f"chat-{namespace}", url=memory_url).messages
    assert [m.content for m in stored] == [
        "Hi, I am Ada",
        "Nice to meet you!",
        "Who am I?",
        second["response"],
    ]


def test_vercel_handler_serves_http(
    memory_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTWIRE_URL", memory_url)
    monkeypatch.setenv("BOTWIRE_EXAMPLE_FAKE_MODEL", "1")
    spec = importlib.util.spec_from_file_location("langchain_vercel_chat", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    server = HTTPServer(("127.0.0.1", 0), module.handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        conn.request("POST", "/api/chat", json.dumps({"session_id": namespace, "message": "hey"}))
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {
            "response": "Nice to meet you!",
            "messages_in_history": 2,
        }
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
