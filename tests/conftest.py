"""Session-wide fixtures: the backends every conformance case runs against."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.backends import EmbeddedBackend

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the real ~/.botwire, and no stray BOTWIRE_* leaks in."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("BOTWIRE_URL", "BOTWIRE_TOKEN", "BOTWIRE_DEBUG"):
        monkeypatch.delenv(var, raising=False)


BACKENDS = ["embedded"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """Every conformance case runs once per backend (embedded SQLite, HTTP servers...)."""
    if request.param == "embedded":
        b = EmbeddedBackend(str(tmp_path_factory.mktemp("embedded") / "memory.db"))
        yield b
        b.close()
        return
    raise AssertionError(f"unknown backend {request.param}")


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A namespace no other test uses (so per-namespace quotas never collide)."""
    name = request.node.name.split("[")[0].removeprefix("test_")[:80]
    return f"t-{name}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def mem(backend: object, ns: str):  # type: ignore[no-untyped-def]
    return backend.memory(ns)  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/memory.db"
