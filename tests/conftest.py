"""Session-wide fixtures: the backends every conformance case runs against."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.backends import LIMITS, EmbeddedBackend, HTTPBackend

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


@pytest.fixture(autouse=True)
def _close_dropped_backends(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close the shared SQLite backends a test opened in its own ``tmp_path`` and dropped
    without ``close()``. ``Memory`` keeps a backend open while any handle is unreleased (so one
    per serverless invocation stays cheap); a test that drops its handles left 3+ descriptors
    per file (database, WAL, shared memory, a reader per thread) for the whole session, and the
    full suite ended with more than 1,024 open descriptors."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is None:
        return
    from botwire import _config

    inside = f"sqlite:///{tmp}/"
    with _config._lock:
        dropped = [
            key
            for key, (store, _) in _config._stores.items()
            if not key[1] and store is not None and key[0].url.startswith(inside)
        ]
        stores = [_config._stores.pop(key)[0] for key in dropped]
    for store in stores:
        store.close()


BACKENDS = ["embedded", "http-sqlite", "http-postgres"]
LIMIT_ARGS = (
    "--max-value-bytes",
    str(LIMITS.max_value_bytes),
    "--max-namespace-bytes",
    str(LIMITS.max_namespace_bytes),
    "--max-keys",
    str(LIMITS.max_keys),
    "--writes-per-day",
    str(LIMITS.writes_per_day),
)


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
    from support.server import running_server

    if request.param == "http-sqlite":
        database = str(tmp_path_factory.mktemp("http-sqlite") / "server.db")
    else:
        from support.postgres import new_database

        database = new_database("botwire_conformance")
    with running_server(*LIMIT_ARGS, database=database, testing_clock=True) as server:
        b = HTTPBackend(server.url, request.param)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shared_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real botwire-server (SQLite) shared by the adapter suites' HTTP runs."""
    from support.server import running_server

    with running_server(database=tmp_path_factory.mktemp("shared-server") / "s.db") as server:
        yield server.url


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
