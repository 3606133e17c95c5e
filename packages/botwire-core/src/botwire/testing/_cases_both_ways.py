"""Each command answers alike as a plain call on ``Memory`` and as a coroutine on
``AsyncMemory``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .._async import AsyncMemory
from .._errors import Conflict, InvalidArgument, InvalidKey, TypeMismatch
from .._memory import Memory
from .._types import Entry, Usage
from ._base import Cases

if TYPE_CHECKING or sys.version_info >= (3, 11):
    from typing import assert_type
else:  # Python 3.10: a no-op, as typing's is when the code runs
    _T = TypeVar("_T")

    def assert_type(value: _T, typ: Any, /) -> _T:
        return value


__all__ = ["BothWaysCases"]


def _plain(entry: Entry | None) -> Any:
    """An entry without its version and clock readings (versions count per store, not per
    namespace, and the two namespaces are written at different times)."""
    return None if entry is None else (entry.key, entry.value, entry.expires_at is None)


def _version(version: int) -> str:
    assert isinstance(version, int) and version > 0
    return "version"


def _script_sync(m: Memory) -> list[Any]:
    out: list[Any] = []
    out.append(_version(assert_type(m.set("a", {"n": 1}), int)))
    out.append(assert_type(m.get("a"), Any))
    out.append(m.get("absent", "dflt"))
    out.append(_plain(assert_type(m.entry("a"), Entry | None)))
    out.append(assert_type(m.append("log", 1, 2, 3, max_len=5), int))
    out.append(assert_type(m.tail("log", 2), list[Any]))
    out.append(assert_type(m.pop("log"), Any))
    out.append(m.pop("empty", "none-left"))
    out.append(assert_type(m.incr("n", 2.5), int | float))
    out.append(assert_type(m.update("n", lambda v: v * 2), Any))
    out.append(m.update({"u1": 1}, u2=2))
    out.append(_version(assert_type(m.set_many({"b": 1, "c": [1, None]}, ttl=60), int)))
    out.append(assert_type(m.get_many(["b", "c", "nope"]), dict[str, Any]))
    out.append(
        {k: _plain(e) for k, e in assert_type(m.entries(["b", "x"]), dict[str, Entry]).items()}
    )
    out.append(assert_type(m.delete("b"), bool))
    out.append(m.delete("b"))
    out.append(assert_type(m.contains("c"), bool))
    out.append(m.contains("b"))
    out.append(assert_type(m.list("u"), list[str]))
    out.append(assert_type(m.keys(), list[str]))
    out.append(assert_type(m.items(), list[tuple[str, Any]]))
    out.append(assert_type(m.values(), list[Any]))
    out.append(list(m.iter_keys("l")))
    version = m.entry("a").version  # type: ignore[union-attr]
    with m.atomic(idempotency_key="tx-1") as tx:
        tx.check("a", version).set("a", 2).incr("n", 1).append("log", "x").delete("c")
    out.append(_version(assert_type(m.atomic().set("t", True).commit(), list[Any])[0]))
    out.append(assert_type(m.usage(), Usage).keys)
    out.append(assert_type(m.delete_many(["t", "u1", "zz"]), int))
    out.append(assert_type(m.clear(), int))
    out.append(m.keys())
    return out


async def _script_async(m: AsyncMemory) -> list[Any]:
    out: list[Any] = []
    out.append(_version(await assert_type(m.set("a", {"n": 1}), Coroutine[Any, Any, int])))
    out.append(await m.get("a"))
    out.append(await m.get("absent", "dflt"))
    out.append(_plain(await assert_type(m.entry("a"), Coroutine[Any, Any, Entry | None])))
    out.append(await m.append("log", 1, 2, 3, max_len=5))
    out.append(await assert_type(m.tail("log", 2), Coroutine[Any, Any, list[Any]]))
    out.append(await m.pop("log"))
    out.append(await m.pop("empty", "none-left"))
    out.append(await assert_type(m.incr("n", 2.5), Coroutine[Any, Any, int | float]))

    async def double(v: Any) -> Any:
        await asyncio.sleep(0)
        return v * 2

    out.append(await m.update("n", double))  # an async fn is awaited
    out.append(await m.update({"u1": 1}, u2=2))
    out.append(_version(await m.set_many({"b": 1, "c": [1, None]}, ttl=60)))
    out.append(await m.get_many(["b", "c", "nope"]))
    out.append({k: _plain(e) for k, e in (await m.entries(["b", "x"])).items()})
    out.append(await m.delete("b"))
    out.append(await m.delete("b"))
    out.append(await m.contains("c"))
    out.append(await m.contains("b"))
    out.append(await m.list("u"))
    out.append(await m.keys())
    out.append(await m.items())
    out.append(await m.values())
    out.append([k async for k in m.iter_keys("l")])
    version = (await m.entry("a")).version  # type: ignore[union-attr]
    async with m.atomic(idempotency_key="tx-1") as tx:
        tx.check("a", version).set("a", 2).incr("n", 1).append("log", "x").delete("c")
    commit = m.atomic().set("t", True).commit()
    out.append(_version((await assert_type(commit, Coroutine[Any, Any, list[Any]]))[0]))
    out.append((await m.usage()).keys)
    out.append(await m.delete_many(["t", "u1", "zz"]))
    out.append(await m.clear())
    out.append(await m.keys())
    return out


class BothWaysCases(Cases):
    """Each command, defined once (``botwire/_memory.py``), answers alike as a plain call on
    ``Memory`` and as a coroutine on ``AsyncMemory``, on every backend: same results, same
    errors, the same retries of ``update()`` when writers race.

    ``assert_type`` is a no-op when the test runs; a type checker run on this file checks that
    the one definition still types precisely on both sides (``Memory.set`` returns ``int``,
    ``AsyncMemory.set`` a coroutine of ``int``): ``uv run --with mypy mypy
    packages/botwire-core/src/botwire/testing/_cases_both_ways.py``."""

    def test_each_command_answers_alike_sync_and_async(self, backend: Any, ns: str) -> None:
        sync = _script_sync(backend.memory(ns + "-s"))

        async def main() -> list[Any]:
            am = backend.amemory(ns + "-a")
            try:
                return await _script_async(am)
            finally:
                await am.aclose()

        assert asyncio.run(main()) == sync
        assert sync[:4] == ["version", {"n": 1}, "dflt", ("a", {"n": 1}, True)]
        assert sync[-3:] == [2, 4, []]  # t and u1 deleted; a, n, log, u2 cleared

    def test_errors_are_the_same_through_both_runners(self, backend: Any, ns: str) -> None:
        m = backend.memory(ns)
        m.set("text", "not a list")

        async def main() -> None:
            am = backend.amemory(ns)
            try:
                with pytest.raises(TypeMismatch):
                    await am.append("text", 1)
                with pytest.raises(Conflict):
                    await am.set("text", "x", if_version=99)
                with pytest.raises(InvalidKey, match="NUL"):
                    await am.get("bad\x00key")
                with pytest.raises(InvalidArgument, match="ttl=-1"):
                    await am.set("k", 1, ttl=-1)
                with pytest.raises(TypeError, match="fn is required"):
                    await am.update("text")
            finally:
                await am.aclose()

        with pytest.raises(TypeMismatch):
            m.append("text", 1)
        with pytest.raises(InvalidKey, match="NUL"):
            m.get("bad\x00key")
        with pytest.raises(Conflict):
            m.set("text", "x", if_version=99)
        with pytest.raises(InvalidArgument, match="ttl=-1"):
            m.set("k", 1, ttl=-1)
        asyncio.run(main())
        assert m.get("text") == "not a list" and "k" not in m  # nothing stored was lost or added

    def test_async_updates_racing_on_one_key_retry_until_all_land(
        self, backend: Any, ns: str
    ) -> None:
        """Conflict raised by an awaited store call reaches update()'s retry loop: the async
        runner throws it into the command where it yielded. 12 tasks, each awaiting between its
        read and its write, lose races to each other; every increment must still land
        exactly once."""
        tasks = 12

        async def main() -> Any:
            am = backend.amemory(ns)
            try:

                async def slow_plus_one(v: int) -> int:
                    await asyncio.sleep(0.002)  # let the others read the same version
                    return v + 1

                await asyncio.gather(
                    *(am.update("counter", slow_plus_one, default=0) for _ in range(tasks))
                )
                return await am.get("counter")
            finally:
                await am.aclose()

        assert asyncio.run(main()) == tasks

    def test_a_cancelled_async_command_raises_cancelled_and_writes_nothing(
        self, backend: Any, ns: str
    ) -> None:
        async def main() -> None:
            am = backend.amemory(ns)
            try:
                started = asyncio.Event()

                async def never(v: Any) -> Any:
                    started.set()
                    await asyncio.sleep(60)

                task = asyncio.ensure_future(am.update("k", never, default=0))
                await started.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await am.get("k", "absent") == "absent"
            finally:
                await am.aclose()

        asyncio.run(main())
