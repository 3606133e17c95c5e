"""Fixtures of the client policy tests: a real server, a fault relay in front of it, and the
same test body run with the sync ``Memory`` and the async ``AsyncMemory``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.server import ServerProcess, running_server

from botwire import AsyncMemory, Memory


class SyncFacade:
    """An ``AsyncMemory`` (or anything it returns) driven from sync code on one event loop, so
    one test body exercises both clients: coroutines are run to completion, transactions and
    builders are wrapped in turn."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                result = self._runner.run(_await(result))
            if type(result).__module__ == "botwire._atomic":
                return SyncFacade(result, self._runner)
            return result

        return call

    def close(self) -> None:
        self._runner.run(self._target.aclose())


async def _await(awaitable: Any) -> Any:
    return await awaitable


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``client(ns, url=..., **kw)``: a ``Memory``, or an ``AsyncMemory`` behind a
    :class:`SyncFacade`; every one made is closed at the end."""
    made: list[Any] = []
    runner = asyncio.Runner() if request.param == "async" else None

    def make(namespace: str, **kwargs: Any) -> Any:
        if runner is None:
            m: Any = Memory(namespace, **kwargs)
        else:
            m = SyncFacade(AsyncMemory(namespace, **kwargs), runner)
        made.append(m)
        return m

    make.kind = request.param  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for m in made:
            with contextlib.suppress(Exception):  # a failed close never masks the test's outcome
                m.close()
        if runner is not None:
            runner.close()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("policy") / "s.db") as s:
        yield s


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


@pytest.fixture
def truth(server: ServerProcess, ns: str) -> Iterator[Memory]:
    """A direct, retry-free view of the server: what is really stored."""
    m = Memory(ns, url=server.url, retries=0)
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def tmp_db(tmp_path: Path) -> str:
    return str(tmp_path / "embedded.db")
