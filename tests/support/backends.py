"""The backends the conformance suite runs every case against.

Each backend gives a ``Memory``/``AsyncMemory`` for a namespace and a clock the test can move
forward (TTL without sleeping): the shape of ``botwire.testing.Backend``, so the conformance kit's
cases run against them. Embedded: a real SQLite file with an injected clock. HTTP: a real
``botwire-server`` process started with ``--testing-clock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from botwire import AsyncMemory, Limits, Memory
from botwire.store import SQLiteStore
from botwire.testing import Clock, StoreBackend

# The limits every conformance backend runs with; tests that hit them use fresh namespaces.
LIMITS = Limits(
    max_value_bytes=100_000,
    max_namespace_bytes=2_000_000,
    max_keys=3000,
    writes_per_day=5000,
)

#: Real time plus an offset the test moves forward (the conformance kit's clock).
FakeClock = Clock


class EmbeddedBackend(StoreBackend):
    """A real SQLite file with an injected clock and :data:`LIMITS`."""

    def __init__(self, path: str) -> None:
        clock = Clock()
        store = SQLiteStore(path, limits=LIMITS, clock=clock)
        super().__init__(store, clock, limits=LIMITS, name="embedded")
        self.path = path


class OnEveryBackend:
    """Mix into a ``botwire.testing`` class: its cases run against the session's backends
    (``tests/conftest.py``: embedded SQLite, HTTP → SQLite server, HTTP → PostgreSQL server)."""

    @pytest.fixture
    def backend(self, backend: Any) -> Any:
        return backend


@dataclass
class HTTPBackend:
    """A real server process; ``url`` is its base URL."""

    url: str
    name: str
    token: str | None = None
    limits: Limits | None = LIMITS
    store: None = None  # the server's store is out of reach: no store-level cases
    _memories: list[Any] = field(default_factory=list)

    def memory(self, namespace: str) -> Memory:
        m = Memory(namespace, url=self.url, token=self.token, timeout=10, retries=2)
        self._memories.append(m)
        return m

    def amemory(self, namespace: str) -> AsyncMemory:
        return AsyncMemory(namespace, url=self.url, token=self.token, timeout=10, retries=2)

    def advance(self, seconds: float) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.post(f"{self.url}/_testing/clock", json={"advance": seconds}, headers=headers)
        r.raise_for_status()

    def close(self) -> None:
        for m in self._memories:
            m.close()


ADAPTER_BACKENDS = ["embedded", "http"]


def adapter_memory_url(request: Any, tmp_path: Any) -> str:
    """``memory_url`` for the adapter suites: a fresh SQLite file, or the session's shared
    server (the ``shared_server_url`` fixture of tests/conftest.py)."""
    if request.param == "embedded":
        return f"sqlite:///{tmp_path}/m.db"
    url: str = request.getfixturevalue("shared_server_url")
    return url
