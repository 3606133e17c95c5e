"""docs/migrating.md's migration code, run as written against real servers.

The "hosted service" is a ``botwire-server --free-tier`` (anonymous, the original's terms)
written to through the original ``/memory/...`` routes exactly as the 0.2.1 client did; the new
deployment is a server with tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e.harness import REPO, Server
from support.server import running_server

from botwire import Memory


@pytest.fixture(scope="module")
def old_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("old-service")
    with running_server("--free-tier", database=data / "old.db") as srv:
        yield srv.url


def doc_code() -> dict[str, Any]:
    """Execute the Python blocks of migrating.md that define functions; return their globals."""
    text = (REPO / "docs" / "migrating.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    scope: dict[str, Any] = {}
    for block in blocks:
        if "def migrate" in block:
            exec(compile(block, "docs/migrating.md", "exec"), scope)
    assert {"migrate", "migrate_history"} <= scope.keys()
    return scope


def old_client_set(base: str, ns: str, key: str, value: Any) -> None:
    """What botwire 0.2.1's ``Memory.set`` sent."""
    payload = value if isinstance(value, str) else json.dumps(value)
    httpx.put(f"{base}/memory/{ns}/{key}", json={"value": payload}).raise_for_status()


def test_documented_migration_restores_types_and_histories(
    old_service: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = "legacy-app"
    old_client_set(old_service, ns, "prefs", {"tone": "brief"})
    old_client_set(old_service, ns, "name", "Ada")
    old_client_set(old_service, ns, "count", 5)
    messages = [
        {"type": "human", "data": {"content": "hi", "type": "human"}},
        {"type": "ai", "data": {"content": "hello!", "type": "ai"}},
    ]
    old_client_set(old_service, "langchain-sessions", "legacy-user-42", messages)

    monkeypatch.setenv("BOTWIRE_URL", server.url)
    monkeypatch.setenv("BOTWIRE_TOKEN", server.token("legacy-*"))
    code = doc_code()
    code["OLD"] = old_service

    assert code["migrate"](ns, decode_json=True) == 3
    old_text = httpx.get(f"{old_service}/memory/langchain-sessions/legacy-user-42").json()["value"]
    code["migrate_history"]("legacy-user-42", old_text)

    with Memory(ns) as new:
        assert new.get("prefs") == {"tone": "brief"}  # the old client's guess, made once
        assert new.get("name") == "Ada"
        assert new.get("count") == "5"  # the old service only ever had strings
    from botwire import BotWireChatHistory

    history = BotWireChatHistory(session_id="legacy-user-42")
    assert [(m.type, m.content) for m in history.messages] == [("human", "hi"), ("ai", "hello!")]
    assert history.namespace == "legacy-user-42"


def test_old_client_routes_answer_on_an_anonymous_server(old_service: str) -> None:
    """Pointing a 0.2.1 client's BOTWIRE_URL at the server keeps its calls working."""
    old_client_set(old_service, "compat-check", "k", {"a": 1})
    got = httpx.get(f"{old_service}/memory/compat-check/k").json()
    assert got["value"] == '{"a": 1}' and got["namespace"] == "compat-check"
    listed = httpx.get(f"{old_service}/memory/compat-check", params={"limit": 10}).json()
    assert [k["key"] for k in listed["keys"]] == ["k"]
    with Memory("compat-check", url=old_service) as new:
        assert new.get("k") == '{"a": 1}'  # a string, as documented
