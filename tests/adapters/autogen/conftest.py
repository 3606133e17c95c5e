"""AutoGen adapter tests: real AssistantAgent/teams with ReplayChatCompletionClient, no network."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from support.backends import ADAPTER_BACKENDS, adapter_memory_url

HERE = Path(__file__).resolve().parent
# Tests run with --import-mode=importlib: make the helper modules here importable by name.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(params=ADAPTER_BACKENDS)
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The botwire backend under test: a fresh embedded SQLite file, or a real server."""
    return adapter_memory_url(request, tmp_path)


@pytest.fixture
def ns() -> str:
    """A namespace no other test uses (the backend may be a server shared by tests)."""
    return f"autogen-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def subprocess_env(memory_url: str) -> dict[str, str]:
    """Environment for a fresh Python process on the same backend."""
    env = {**os.environ, "BOTWIRE_URL": memory_url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
