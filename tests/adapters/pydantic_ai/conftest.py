"""Pydantic AI adapter tests: real agent runs with Pydantic AI's FunctionModel, no network.

In-process tests run once per backend (``memory_url``: an embedded SQLite file, or the
session's real server; support/adapters.py). Fresh-process workers serve both backends in
turn (``both_urls``), one process per simulated invocation, to keep process starts few.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.adapters import importable_here, memory, memory_url, namespace

__all__ = ["both_urls", "memory", "memory_url", "namespace", "subprocess_env"]

HERE = importable_here(__file__)  # pa_helpers, pa_worker


@pytest.fixture
def both_urls(tmp_path: Path, shared_server_url: str) -> list[str]:
    """The two backends a worker process uses: a fresh embedded SQLite file, a real server."""
    return [f"sqlite:///{tmp_path}/m.db", shared_server_url]


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a fresh Python process (backends are passed as arguments)."""
    env = dict(os.environ)
    env.pop("BOTWIRE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env
