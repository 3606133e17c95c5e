"""Fixtures for the LangChain adapter tests.

Every test takes its backend from ``memory_url`` (an embedded SQLite file here; the
test session may parametrize it over real ``botwire-server`` processes) and works in
a namespace of its own, so tests never see each other's data on a shared server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.backends import ADAPTER_BACKENDS, adapter_memory_url

from botwire import Memory

HERE = Path(__file__).parent


@pytest.fixture(params=ADAPTER_BACKENDS)
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The botwire backend under test: a fresh embedded SQLite file, or a real server."""
    return adapter_memory_url(request, tmp_path)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"lc-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def memory(memory_url: str, namespace: str) -> Iterator[Memory]:
    """A ``Memory`` on the backend under test, in this test's namespace."""
    with Memory(namespace, url=memory_url) as m:
        yield m


RunScript = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_script(memory_url: str) -> RunScript:
    """Run one of this directory's ``lc_proc_*.py`` scripts in a fresh Python process.

    The child gets ``BOTWIRE_URL`` (and the parent's ``BOTWIRE_TOKEN`` if any), never
    shares objects with the test, and must exit 0; its stdout is returned.
    """

    def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, BOTWIRE_URL=memory_url, PYTHONUNBUFFERED="1")
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run
