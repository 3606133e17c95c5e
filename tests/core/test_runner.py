"""The one store runner (``botwire.backends._threaded.ThreadedAsyncStore``, which the server's
``StoreRunner`` builds on): where calls run, and optional capabilities forwarded by name, so a
capability declared in ``botwire/store/_protocol.py`` needs no edit in either runner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from botwire import AsyncMemory, Memory, TypeMismatch
from botwire.backends._threaded import ThreadedAsyncStore
from botwire.store import Op, SQLiteStore, _protocol
from botwire.store._protocol import MEMBERS, OPTIONAL


@runtime_checkable
class SupportsRollups(Protocol):
    """A capability that does not exist yet (as issue 18's ``rollups`` once did; named
    ``rollups`` here since ``rollups`` exists now)."""

    def rollups(self, namespace: str, since: int) -> list[str]: ...


class Recording(SQLiteStore):
    """A SQLite store that records the thread of each call and offers ``rollups``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: dict[str, int] = {}

    def rollups(self, namespace: str, since: int) -> list[str]:
        self.threads["rollups"] = threading.get_ident()
        return [f"{namespace}@{since}"]

    def clear(self, namespace: str) -> int:
        self.threads["clear"] = threading.get_ident()
        return super().clear(namespace)

    def batch(self, namespace: str, ops: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        self.threads["batch"] = threading.get_ident()
        return super().batch(namespace, ops, **options)


@pytest.fixture
def declared_rollups(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rollups`` declared the way a new capability is: one entry in OPTIONAL (MEMBERS is
    derived from OPTIONAL when _protocol is imported; here it is patched alike)."""
    monkeypatch.setitem(OPTIONAL, "rollups", SupportsRollups)
    monkeypatch.setitem(MEMBERS, "rollups", "rollups")


def _runners(store: Any) -> list[ThreadedAsyncStore]:
    from botwire_server.storage import StoreRunner

    return [
        ThreadedAsyncStore(store, owned=False),
        StoreRunner(store, inline=True),
        StoreRunner(store, inline=False),
    ]


@pytest.mark.usefixtures("declared_rollups")
def test_a_new_capability_is_forwarded_by_every_runner(tmp_path: Path) -> None:
    store = Recording(tmp_path / "c.db")

    async def main() -> None:
        loop_thread = threading.get_ident()
        for runner in _runners(store):
            inline = runner.inline
            assert runner.supports("rollups")
            assert await runner.rollups("ns", 7) == ["ns@7"]
            assert (store.threads["rollups"] == loop_thread) is inline, runner
            assert await runner.call("rollups", "ns", since=8) == ["ns@8"]

    try:
        asyncio.run(main())
    finally:
        store.close()
    assert _protocol.capabilities(store) >= {"rollups"}


@pytest.mark.usefixtures("declared_rollups")
def test_a_missing_or_undeclared_capability_is_a_clear_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "m.db")  # declares everything but rollups

    async def main() -> None:
        for runner in _runners(store):
            assert not runner.supports("rollups")
            assert await runner.call("rollups", "ns", 1, default=None) is None
            with pytest.raises(AttributeError, match=r"does not offer 'rollups'.*OPTIONAL"):
                await runner.rollups("ns", 1)
            with pytest.raises(AttributeError, match="does not offer 'rollups'"):
                await runner.call("rollups", "ns", 1)
            # integrity_check exists on the store but is no declared capability: not forwarded
            with pytest.raises(AttributeError, match="integrity_check"):
                runner.integrity_check  # noqa: B018
            with pytest.raises(AttributeError, match=r"declare it in botwire/store/_protocol\.py"):
                runner.supports("integrity_check")
            # a declared property is read as it is now
            assert runner.needs_sweep is False

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_heavy_calls_leave_the_loop_even_inline(tmp_path: Path) -> None:
    from botwire_server.storage import StoreRunner

    store = Recording(tmp_path / "h.db")

    async def main() -> None:
        loop_thread = threading.get_ident()
        runner = StoreRunner(store, inline=True)
        await runner.batch("ns", [Op("append", "l", items=("1",))])  # light: on the loop
        assert store.threads["batch"] == loop_thread
        await runner.batch("ns", [Op("delete", "l")])  # may free a long list: a thread
        assert store.threads["batch"] != loop_thread
        await runner.clear("ns")
        assert store.threads["clear"] != loop_thread

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_async_memory_over_the_embedded_store_keeps_the_store_exceptions(
    tmp_path: Path,
) -> None:
    """Core's runner maps no failure (the server's maps them to 503): AsyncMemory raises what
    Memory raises, and the store Memory owns stays open after the AsyncMemory closes."""
    mem = Memory("ns", url=str(tmp_path / "a.db"))
    store = mem._store

    async def main() -> None:
        am = AsyncMemory("ns", store=ThreadedAsyncStore(store, owned=False))
        await am.set("k", 1)
        with pytest.raises(TypeMismatch, match="'k'"):
            await am.append("k", 2)  # not a list: the TypeMismatch Memory raises
        await am.aclose()

    try:
        asyncio.run(main())
        assert mem.get("k") == 1  # the store stayed open
    finally:
        mem.close()
