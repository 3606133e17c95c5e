"""Shared fixtures of the transport tests: a real server, and every test run for ``Memory`` and
``AsyncMemory`` alike (``kind`` is ``"sync"`` or ``"async"``; :class:`Client` gives both the
same blocking interface, the async one on ONE event loop per client so that its connection pool
is reused across calls exactly like the sync one's)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from support.server import ServerProcess, running_server

from botwire import AsyncMemory, Memory

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the proxy variables they mean; none leaks in from the machine."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.delenv("BOTWIRE_KEEPALIVE_EXPIRY", raising=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("transport") / "s.db") as s:
        yield s


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Client:
    """``Memory`` or ``AsyncMemory`` behind one blocking interface."""

    def __init__(self, kind: str, namespace: str, **kwargs: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.memory: Any = Memory(namespace, **kwargs)
        else:
            self.loop = asyncio.new_event_loop()
            self.memory = AsyncMemory(namespace, **kwargs)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.memory, name)
        if self.loop is None or not callable(target):
            return target
        loop = self.loop

        def run(*args: Any, **kwargs: Any) -> Any:
            result = target(*args, **kwargs)
            return loop.run_until_complete(result) if asyncio.iscoroutine(result) else result

        return run

    def close(self) -> None:
        if self.loop is None:
            self.memory.close()
            return
        self.loop.run_until_complete(self.memory.aclose())
        self.loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
