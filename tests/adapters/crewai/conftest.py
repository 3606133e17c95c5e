"""CrewAI adapter tests: offline, telemetry off, a throw-away HOME (set before crewai imports).

``memory_url`` and the process helpers are shared with every adapter suite
(support/adapters.py); ``ns`` is the root conftest's.

``import crewai`` writes under ``$HOME`` and, unless told not to, phones home; both are set
here at import time, before any test module imports crewai, and passed to subprocesses.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from support.adapters import importable_here, memory_url

__all__ = ["CREWAI_ENV", "memory_url", "subprocess_env"]

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

HERE = importable_here(__file__)  # crewai_helpers, crewai_worker


@pytest.fixture
def subprocess_env(memory_url: str) -> dict[str, str]:
    """Environment for a fresh Python process: same backend, offline, no OpenAI key."""
    env = {**os.environ, **CREWAI_ENV, "BOTWIRE_URL": memory_url}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
