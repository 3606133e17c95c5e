"""Fixtures and process helpers every adapter suite shares (tests/adapters/<framework>).

A suite's ``conftest.py`` imports the fixtures it uses by name, which is how pytest registers
them there. Every test runs once per backend in ``ADAPTER_BACKENDS`` (a fresh embedded SQLite
file, or the session's real server) and in a namespace of its own, so tests never see each
other's data on the shared server. "Serverless, honestly": the helpers below run a suite's
scripts as fresh Python processes on the same backend.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botwire import Memory
from support.backends import ADAPTER_BACKENDS, adapter_memory_url

__all__ = [
    "importable_here",
    "memory",
    "memory_url",
    "namespace",
    "race_processes",
    "run_script",
    "start_worker",
    "worker_result",
]

#: Namespace prefix per suite directory, so a shared server's keys say which suite wrote them.
_PREFIX = {
    "langchain": "lc",
    "llamaindex": "li",
    "langgraph": "lg",
    "crewai": "crewai",
    "autogen": "autogen",
    "strands": "strands",
}


@pytest.fixture(params=ADAPTER_BACKENDS)
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The botwire backend under test: a fresh embedded SQLite file, or a real server."""
    return adapter_memory_url(request, tmp_path)


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace no other test uses, named after its suite and test."""
    prefix = _PREFIX.get(request.path.parent.name, "adapter")
    name = re.sub(r"[^A-Za-z0-9._:@-]", "-", request.node.name.removeprefix("test_"))[:80]
    return f"{prefix}-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def memory(memory_url: str, namespace: str) -> Iterator[Memory]:
    """A ``Memory`` on the backend under test, in this test's namespace."""
    with Memory(namespace, url=memory_url) as m:
        yield m


RunScript = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_script(request: pytest.FixtureRequest, memory_url: str) -> RunScript:
    """Run a script of the test's own directory in a fresh Python process on the backend.

    The child gets ``BOTWIRE_URL`` (and the parent's ``BOTWIRE_TOKEN`` if any), shares no
    objects with the test, and must exit 0; the completed process is returned.
    """
    here = request.path.parent

    def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, BOTWIRE_URL=memory_url, PYTHONUNBUFFERED="1")
        proc = subprocess.run(
            [sys.executable, str(here / script), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


def importable_here(conftest_file: str) -> Path:
    """Put a suite's directory on ``sys.path`` (tests run with ``--import-mode=importlib``, so
    its helper modules are not importable by name otherwise) and return it."""
    here = Path(conftest_file).resolve().parent
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    return here


def start_worker(script: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``script`` as a fresh process (a serverless invocation); see :func:`worker_result`."""
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def worker_result(proc: subprocess.Popen[str], timeout: float = 240) -> Any:
    """The JSON a worker printed on its ``RESULT `` line, once it exited 0."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def race_processes(
    script: Path, arg_lists: list[list[str]], env: dict[str, str], go: Path, timeout: float = 240
) -> None:
    """Run ``script`` once per argument list, all released at the same moment; each must exit 0.

    Every child touches ``<go>.ready-<something>`` once it has imported everything, then waits
    for ``go`` to exist: touching ``go`` only when all are ready makes them really race.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in arg_lists
    ]
    deadline = time.monotonic() + timeout
    while len(list(go.parent.glob(go.name + ".ready-*"))) < len(procs):
        for p in procs:
            if p.poll() not in (None, 0):
                out, err = p.communicate()
                raise AssertionError(f"{script.name} failed before start:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{script.name}: writers never became ready"
        time.sleep(0.05)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, f"{script.name} failed:\n{out}\n{err}"
