"""Fixtures of the serverless e2e suite: one real botwire-server for the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e.harness import SECRET, Server
from support.server import running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``botwire-server`` process (SQLite) that checks tokens signed with ``SECRET``."""
    data = tmp_path_factory.mktemp("server")
    with running_server("--token-secret", SECRET, database=data / "botwire.db", cwd=data) as srv:
        yield Server(srv.url, SECRET)


@pytest.fixture(scope="session")
def user_token(server: Server) -> str:
    """What the Lambda and Cloud Run services get: read and write on ``user-*`` only."""
    return server.token("user-*")


@pytest.fixture(scope="session")
def reader(server: Server) -> Iterator[Any]:
    """A factory of ``Memory`` objects with a read-only token, for checking from outside."""
    from botwire import Memory

    token = server.token("*", read_only=True)
    opened: list[Any] = []

    def make(ns: str) -> Any:
        m = Memory(ns, url=server.url, token=token, timeout=10, retries=1)
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()
