"""OpenAI Agents SDK adapter tests: the real ``Runner`` with a scripted Model, no network.

In-process tests run once per backend (``memory_url``: an embedded SQLite file, or the
session's real server, shared with every adapter suite in support/adapters.py). Importing the
Agents SDK costs seconds of CPU, so each fresh-process worker serves both backends in turn
(``both_urls``): one process per simulated invocation, not one per invocation and backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.adapters import importable_here, memory_url

__all__ = ["both_urls", "memory_url", "subprocess_env"]

HERE = importable_here(__file__)  # oa_helpers, oa_worker

# The Agents SDK exports traces to OpenAI unless told not to: no network in tests.
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")


@pytest.fixture
def both_urls(tmp_path: Path, shared_server_url: str) -> list[str]:
    """The two backends a worker process uses: a fresh embedded SQLite file, a real server."""
    return [f"sqlite:///{tmp_path}/m.db", shared_server_url]


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a fresh Python process (backends are passed as arguments)."""
    env = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env.pop("BOTWIRE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
