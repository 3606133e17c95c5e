"""The backends the conformance suite runs every case against.

Each backend gives a ``Memory``/``AsyncMemory`` for a namespace and a clock the test can move
forward (TTL without sleeping). Embedded: a real SQLite file with an injected clock. HTTP: a real
``botwire-server`` process started with ``--testing-clock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botwire import AsyncMemory, Limits, Memory
from botwire._clock import TestingClock
from botwire.backends._threaded import ThreadedAsyncStore
from botwire.store import SQLiteStore

# The limits every conformance backend runs with; tests that hit them use fresh namespaces.
LIMITS = Limits(
    max_value_bytes=100_000,
    max_namespace_bytes=2_000_000,
    max_keys=3000,
    writes_per_day=5000,
)


#: The tests' movable clock is the server's ``--testing-clock`` (one definition).
FakeClock = TestingClock


@dataclass
class EmbeddedBackend:
    path: str
    name: str = "embedded"
    clock: FakeClock = field(default_factory=FakeClock)
    store: Any = None

    def __post_init__(self) -> None:
        self.store = SQLiteStore(self.path, limits=LIMITS, clock=self.clock)

    def memory(self, namespace: str) -> Memory:
        return Memory(namespace, store=self.store)

    def amemory(self, namespace: str) -> AsyncMemory:
        return AsyncMemory(namespace, store=ThreadedAsyncStore(self.store, owned=False))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def close(self) -> None:
        self.store.close()


@dataclass
class HTTPBackend:
    """A real server process; ``url`` is its base URL."""

    url: str
    name: str
    token: str | None = None
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
