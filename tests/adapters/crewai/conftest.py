"""CrewAI adapter tests: offline, telemetry off, a throw-away HOME (set before crewai imports).

``import crewai`` writes under ``$HOME`` and, unless told not to, phones home; both are set
here at import time, before any test module imports crewai, and passed to subprocesses.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from support.backends import ADAPTER_BACKENDS, adapter_memory_url

_HOME = tempfile.mkdtemp(prefix="botwire-crewai-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

CREWAI_ENV = {
    "HOME": _HOME,
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
}
os.environ.update(CREWAI_ENV)

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
    """A namespace prefix no other test uses (the backend may be a server shared by tests)."""
    return f"crewai-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def subprocess_env(memory_url: str) -> dict[str, str]:
    """Environment for a fresh Python process: same backend, offline, no OpenAI key."""
    env = {**os.environ, **CREWAI_ENV, "BOTWIRE_URL": memory_url}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
