"""OpenAI Agents SDK adapter tests: the real ``Runner`` with a scripted Model, no network.

``memory_url`` (an embedded SQLite file, or the session's real server) and the process helpers
are shared with every adapter suite (support/adapters.py); ``ns`` is the root conftest's.
"""

from __future__ import annotations

import os

import pytest
from support.adapters import importable_here, memory_url

__all__ = ["memory_url", "subprocess_env"]

HERE = importable_here(__file__)  # oa_helpers, oa_worker

# The Agents SDK exports traces to OpenAI unless told not to: no network in tests.
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")


@pytest.fixture
def subprocess_env(memory_url: str) -> dict[str, str]:
    """Environment for a fresh Python process on the same backend."""
    env = {**os.environ, "BOTWIRE_URL": memory_url, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
