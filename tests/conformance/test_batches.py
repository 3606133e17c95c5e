"""get_many / set_many / delete_many and atomic(): one round trip, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import Conflict, Memory, NotSerializable, TypeMismatch, ValueTooLarge


def test_many(mem: Memory) -> None:
    v = mem.set_many({"a": 1, "b": [2], "c/d": {"e": None}})
    assert mem.get_many(["a", "b", "c/d", "missing"]) == {"a": 1, "b": [2], "c/d": {"e": None}}
    assert mem.entry("a").version == v  # type: ignore[union-attr]
    assert mem.delete_many(["a", "b", "missing"]) == 2
    assert mem.list() == ["c/d"]
    assert mem.get_many([]) == {} and mem.set_many({}) == 0 and mem.delete_many([]) == 0
    entries = mem.entries(["c/d", "missing"])
    assert list(entries) == ["c/d"]
    e = entries["c/d"]
    assert (e.key, e.value, e.version) == ("c/d", {"e": None}, v) and e.expires_at is None
    assert e == mem.entry("c/d") and mem.entries([]) == {}


def test_set_many_is_atomic(mem: Memory) -> None:
    mem.set("keep", "old")
    with pytest.raises(ValueTooLarge):
        mem.set_many({"keep": "new", "huge": "x" * 200_000})
    assert mem.get("keep") == "old" and "huge" not in mem
    with pytest.raises(NotSerializable):  # refused before any I/O
        mem.set_many({"keep": "new", "bad": {1, 2}})
    assert mem.get("keep") == "old"


def test_atomic_commits_all(mem: Memory) -> None:
    mem.set("balance", 100)
    e = mem.entry("balance")
    assert e is not None
    with mem.atomic() as tx:
        tx.check("balance", e.version).check("new", None)
        tx.set("balance", 90).append("ledger", {"debit": 10}).incr("ops").delete("gone")
        tx.set("new", True, ttl=100)
    assert tx.committed
    assert mem.get_many(["balance", "ledger", "ops", "new"]) == {
        "balance": 90,
        "ledger": [{"debit": 10}],
        "ops": 1,
        "new": True,
    }


def test_atomic_failed_check_applies_nothing(mem: Memory) -> None:
    v = mem.set("balance", 100)
    mem.set("balance", 50)
    tx = mem.atomic().check("balance", v).set("balance", 0).append("ledger", "x")
    with pytest.raises(Conflict) as info:
        tx.commit()
    assert info.value.key == "balance"
    assert mem.get("balance") == 50 and "ledger" not in mem
    tx2 = mem.atomic().check("other", None).set("other", 1).incr("balance")
    mem.set("other", "exists")
    with pytest.raises(Conflict):
        tx2.commit()
    assert mem.get("other") == "exists" and mem.get("balance") == 50


def test_atomic_failed_op_applies_nothing(mem: Memory) -> None:
    mem.set("text", "not a list")
    with pytest.raises(TypeMismatch):
        mem.atomic().set("a", 1).append("text", 2).commit()
    assert "a" not in mem


def test_atomic_results(mem: Memory) -> None:
    mem.set("d", 1)
    results = mem.atomic().set("s", 1).delete("d").append("l", 1, 2).incr("n", 5).check("s", None)
    with pytest.raises(Conflict):  # the check sees the set earlier in the same batch
        results.commit()
    out = mem.atomic().set("s", 1).delete("d").append("l", 1, 2).incr("n", 5).commit()
    assert out[0] > 0 and out[1:] == [True, 2, 5]


def test_atomic_block_with_exception_commits_nothing(mem: Memory) -> None:
    def body() -> None:
        with mem.atomic() as tx:
            tx.set("a", 1)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        body()
    assert "a" not in mem


async def _async_parity(am: Any) -> None:
    assert await am.set("k", {"x": 1}) > 0
    assert await am.get("k") == {"x": 1}
    assert await am.append("h", 1, 2) == 2
    assert await am.tail("h", 1) == [2]
    assert await am.pop("h") == 2
    assert await am.incr("n", 2) == 2
    assert await am.update("n", lambda v: v * 10) == 20
    assert await am.set_many({"a": 1, "b": 2}) > 0
    assert await am.get_many(["a", "b", "zz"]) == {"a": 1, "b": 2}
    assert (await am.entries(["a", "zz"]))["a"] == await am.entry("a")
    assert await am.delete_many(["a"]) == 1
    assert await am.contains("b") and not await am.contains("a")
    async with am.atomic() as tx:
        tx.set("t", 1).append("h", 3)
    assert await am.get("h") == [1, 3]
    assert await am.list() == ["b", "h", "k", "n", "t"]
    assert (await am.entry("k")).value == {"x": 1}
    assert (await am.usage()).keys == 5
    assert await am.delete("k") is True
    assert await am.clear() == 4
    with pytest.raises(Conflict):
        await am.set("b", 1, if_version=1)


def test_async_memory_has_the_same_semantics(backend: Any, ns: str) -> None:
    import asyncio

    async def main() -> None:
        am = backend.amemory(ns)
        try:
            await _async_parity(am)
        finally:
            await am.aclose()

    asyncio.run(main())
