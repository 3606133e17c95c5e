"""``adk web`` / ``adk api_server`` take the botwire services from a ``services.yaml``, no code.

In-process through ADK's own loader and registry (embedded and HTTP), then a real
``adk api_server`` process on a real botwire server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from google.adk.cli.service_registry import get_service_registry, load_services_module
from google.adk.cli.utils.service_factory import create_session_service_from_options
from support.server import free_port

from botwire_adk import BotWireArtifactService, BotWireMemoryService, BotWireSessionService
from botwire_adk._common import parse_uri

SERVICES_YAML = """\
services:
  - {scheme: botwire, type: session, class: botwire_adk.BotWireSessionService}
  - {scheme: botwire, type: memory, class: botwire_adk.BotWireMemoryService}
  - {scheme: botwire, type: artifact, class: botwire_adk.BotWireArtifactService}
"""
AGENT = """\
from google.adk.agents import LlmAgent
root_agent = LlmAgent(name="clerk", model="gemini-2.5-flash", instruction="never called")
"""


def _agents_dir(tmp_path: Path) -> Path:
    (tmp_path / "clerk").mkdir()
    (tmp_path / "clerk" / "__init__.py").write_text("from . import agent\n")
    (tmp_path / "clerk" / "agent.py").write_text(AGENT)
    (tmp_path / "services.yaml").write_text(SERVICES_YAML)
    return tmp_path


def _botwire_uri(memory_url: str, namespace: str) -> str:
    if memory_url.startswith("http://"):
        return f"botwire://{urlparse(memory_url).netloc}/{namespace}"
    return f"botwire:///{namespace}"  # the server (here a SQLite file) from BOTWIRE_URL


def test_parse_uri() -> None:
    assert parse_uri("botwire://127.0.0.1:8765/adk") == ("http://127.0.0.1:8765", "adk")
    assert parse_uri("botwire://mem.example.com/prod?tls=1") == ("https://mem.example.com", "prod")
    assert parse_uri("botwires://mem.example.com/prod") == ("https://mem.example.com", "prod")
    assert parse_uri("botwire:///") == (None, None)
    with pytest.raises(ValueError, match="not a botwire URI"):
        parse_uri("redis://localhost/0")


def test_services_yaml_through_adk_registry(
    tmp_path: Path, memory_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTWIRE_URL", memory_url)
    agents = _agents_dir(tmp_path)
    load_services_module(str(agents))
    uri = _botwire_uri(memory_url, namespace)
    session_service = create_session_service_from_options(base_dir=agents, session_service_uri=uri)
    assert isinstance(session_service, BotWireSessionService)
    registry = get_service_registry()
    memory = registry.create_memory_service(uri, agents_dir=str(agents))
    artifacts = registry.create_artifact_service(uri, agents_dir=str(agents))
    assert isinstance(memory, BotWireMemoryService)
    assert isinstance(artifacts, BotWireArtifactService)
    assert session_service.memory.namespace == namespace

    async def go() -> None:
        await session_service.create_session(
            app_name="clerk", user_id="u", session_id="s", state={"user:lang": "fr"}
        )
        direct = BotWireSessionService(namespace, url=memory_url)
        assert await direct.get_user_state(app_name="clerk", user_id="u") == {"lang": "fr"}

    asyncio.run(go())
    with pytest.raises(TypeError, match="unexpected options"):
        BotWireSessionService(uri=uri, colour="blue")


@pytest.mark.parametrize("memory_url", ["http"], indirect=True)
def test_adk_api_server_with_botwire_uri(tmp_path: Path, memory_url: str, namespace: str) -> None:
    agents = _agents_dir(tmp_path)
    port = free_port()
    adk = Path(sys.executable).with_name("adk")
    proc = subprocess.Popen(
        [
            str(adk),
            "api_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--session_service_uri",
            _botwire_uri(memory_url, namespace),
            "--artifact_service_uri",
            _botwire_uri(memory_url, namespace),
            str(agents),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=dict(os.environ, BOTWIRE_URL=""),  # the URI alone must say where botwire is
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            try:
                urllib.request.urlopen(base + "/list-apps", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "adk api_server never came up"
                time.sleep(0.3)
        req = urllib.request.Request(
            base + "/apps/clerk/users/alice/sessions/s1",
            data=json.dumps({"user:plan": "pro", "topic": "x"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        created = json.loads(urllib.request.urlopen(req, timeout=30).read())
        assert created["id"] == "s1"
        listed = json.loads(
            urllib.request.urlopen(base + "/apps/clerk/users/alice/sessions", timeout=30).read()
        )
        assert [s["id"] for s in listed] == ["s1"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    async def check() -> None:
        direct = BotWireSessionService(namespace, url=memory_url)
        session = await direct.get_session(app_name="clerk", user_id="alice", session_id="s1")
        assert session is not None
        assert session.state == {"topic": "x", "user:plan": "pro"}

    asyncio.run(check())


def test_lazy_reexport_from_botwire() -> None:
    import botwire
    import botwire_adk

    for name in ("BotWireSessionService", "BotWireMemoryService", "BotWireArtifactService"):
        assert getattr(botwire, name) is getattr(botwire_adk, name)
        assert name in dir(botwire)


def test_register_for_services_py_and_fast_api() -> None:
    import botwire_adk

    botwire_adk.register()
    registry = get_service_registry()
    service = registry.create_session_service("botwires://mem.example.com/prod")
    assert isinstance(service, BotWireSessionService)
    assert service.memory.url == "https://mem.example.com" and service.memory.namespace == "prod"
    memory = registry.create_memory_service("botwire://127.0.0.1:1/m", agents_dir="/x")
    assert isinstance(memory, BotWireMemoryService) and memory.memory.namespace == "m"


def test_services_share_a_given_client(memory_url: str, namespace: str) -> None:
    from botwire import AsyncMemory, Memory

    with Memory(namespace, url=memory_url) as mem:
        sessions = BotWireSessionService(memory=mem)
        assert sessions.memory.namespace == namespace
        other_ns = BotWireMemoryService("elsewhere", memory=mem)
        assert other_ns.memory.namespace == "elsewhere"

        async def go() -> None:
            await sessions.create_session(app_name="a", user_id="u", session_id="s")
            aio = AsyncMemory(namespace, url=memory_url)
            again = BotWireSessionService(memory=aio)
            assert await again.get_session(app_name="a", user_id="u", session_id="s")
            await aio.aclose()
            await sessions.memory.aclose()

        asyncio.run(go())
    with pytest.raises(TypeError, match=r"botwire\.Memory or AsyncMemory"):
        BotWireSessionService(memory={"not": "a client"})  # type: ignore[arg-type]
