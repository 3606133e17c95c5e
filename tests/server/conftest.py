"""Fixtures of the server suite: real ``botwire-server`` processes, raw HTTP with httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from server.srv_helpers import SECRET
from support.server import ServerProcess, running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One anonymous loopback server with the testing clock and small limits."""
    db = tmp_path_factory.mktemp("server") / "botwire.db"
    with running_server("--max-value-bytes", "100000", database=db, testing_clock=True) as s:
        yield s


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that needs tokens signed with :data:`SECRET`."""
    db = tmp_path_factory.mktemp("auth") / "botwire.db"
    with running_server("--token-secret", SECRET, database=db) as s:
        yield s
