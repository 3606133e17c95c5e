"""Batches, atomic(), concurrent writers, and limits exact at the boundary."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from .._errors import (
    Conflict,
    InvalidArgument,
    NotSerializable,
    QuotaExceeded,
    TypeMismatch,
    ValueTooLarge,
)
from .._memory import Memory
from .._types import Limits
from ._base import Cases

__all__ = ["BatchCases", "ConcurrencyCases", "LimitCases"]


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


class BatchCases(Cases):
    """get_many / set_many / delete_many and atomic(): one round trip, all or nothing."""

    def test_many(self, mem: Memory) -> None:
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

    def test_set_many_is_atomic(self, mem: Memory, limits: Limits) -> None:
        mem.set("keep", "old")
        with pytest.raises(ValueTooLarge):
            mem.set_many({"keep": "new", "huge": "x" * (limits.max_value_bytes + 1)})
        assert mem.get("keep") == "old" and "huge" not in mem
        with pytest.raises(NotSerializable):  # refused before any I/O
            mem.set_many({"keep": "new", "bad": {1, 2}})
        assert mem.get("keep") == "old"

    def test_atomic_commits_all(self, mem: Memory) -> None:
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

    def test_atomic_failed_check_applies_nothing(self, mem: Memory) -> None:
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

    def test_atomic_failed_op_applies_nothing(self, mem: Memory) -> None:
        mem.set("text", "not a list")
        with pytest.raises(TypeMismatch):
            mem.atomic().set("a", 1).append("text", 2).commit()
        assert "a" not in mem

    def test_atomic_results(self, mem: Memory) -> None:
        mem.set("d", 1)
        results = (
            mem.atomic().set("s", 1).delete("d").append("l", 1, 2).incr("n", 5).check("s", None)
        )
        with pytest.raises(Conflict):  # the check sees the set earlier in the same batch
            results.commit()
        out = mem.atomic().set("s", 1).delete("d").append("l", 1, 2).incr("n", 5).commit()
        assert out[0] > 0 and out[1:] == [True, 2, 5]

    def test_atomic_block_with_exception_commits_nothing(self, mem: Memory) -> None:
        def body() -> None:
            with mem.atomic() as tx:
                tx.set("a", 1)
                raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError):
            body()
        assert "a" not in mem

    def test_async_memory_has_the_same_semantics(self, backend: Any, ns: str) -> None:
        import asyncio

        async def main() -> None:
            am = backend.amemory(ns)
            try:
                await _async_parity(am)
            finally:
                await am.aclose()

        asyncio.run(main())


class ConcurrencyCases(Cases):
    """Concurrent writers through one backend lose nothing."""

    def test_threads_append_and_update_without_loss(self, backend: Any, ns: str) -> None:
        m = backend.memory(ns)
        threads, per = 8, 40
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(per):
                    m.append("log", [t, i])
                    m.update("counter", lambda n: n + 1, default=0)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        assert not errors
        log = m.get("log")
        assert len(log) == threads * per
        for t in range(threads):
            assert [i for tt, i in log if tt == t] == list(range(per))
        assert m.get("counter") == threads * per


def _incr_times(mem: Memory, key: str, n: int) -> None:
    """n increments in batches of at most 1000 ops (the batch limit)."""
    while n > 0:
        tx = mem.atomic()
        for _ in range(min(n, 1000)):
            tx.incr(key)
        tx.commit()
        n -= 1000


def _set_many(mem: Memory, items: dict[str, object], ttl: float | None = None) -> None:
    keys = list(items)
    for i in range(0, len(keys), 1000):
        mem.set_many({k: items[k] for k in keys[i : i + 1000]}, ttl=ttl)


class LimitCases(Cases):
    """Limits and quotas are exact at the boundary and never lose what is stored.

    Backends run with support.backends.LIMITS: 100,000-byte values, 2,000,000 bytes, 3000 keys and
    5000 writes per namespace per day."""

    def test_batches_are_limited_to_1000_ops(self, mem: Memory) -> None:
        with pytest.raises(InvalidArgument, match="1000"):
            mem.set_many({f"k{i}": i for i in range(1001)})
        assert mem.list() == []

    def test_value_size_limit_is_exact(self, limits: Limits, mem: Memory) -> None:
        just = "x" * (limits.max_value_bytes - 2)  # + 2 quotes = the limit
        mem.set("k", just)
        with pytest.raises(ValueTooLarge) as info:
            mem.set("k", just + "y")
        assert "'k'" in str(info.value) and str(limits.max_value_bytes) in str(info.value)
        assert mem.get("k") == just
        with pytest.raises(ValueTooLarge):
            mem.append("h", "ok", just + "y")
        assert "h" not in mem

    def test_writes_per_day_is_exact(self, limits: Limits, mem: Memory) -> None:
        n = limits.writes_per_day
        _incr_times(mem, "c", n - 1)
        assert mem.incr("c") == n  # the last allowed write
        with pytest.raises(QuotaExceeded) as info:
            mem.incr("c")
        exc = info.value
        assert exc.retry_after is not None and 0 < exc.retry_after <= 86400
        assert mem.namespace in str(exc) and "midnight" in str(exc)
        with pytest.raises(QuotaExceeded):
            mem.set("other", 1)
        assert mem.get("c") == n and "other" not in mem  # reads still work, nothing lost
        assert mem.usage().writes_today == n
        assert mem.delete("c") is True  # deletes are never refused

    def test_writes_quota_resets_at_midnight(
        self, limits: Limits, backend: Any, mem: Memory
    ) -> None:
        _incr_times(mem, "c", limits.writes_per_day)
        with pytest.raises(QuotaExceeded) as info:
            mem.incr("c")
        assert info.value.retry_after is not None
        backend.advance(info.value.retry_after + 1)
        assert mem.incr("c") == limits.writes_per_day + 1

    def test_key_count_limit_is_exact(self, limits: Limits, mem: Memory) -> None:
        n = limits.max_keys
        _set_many(mem, {f"k{i}": i for i in range(n)})
        mem.set("k0", "overwrite is fine")
        with pytest.raises(QuotaExceeded, match="keys"):
            mem.set("one-more", 1)
        assert mem.delete("k1")
        mem.set("one-more", 1)
        assert mem.usage().keys == n

    def test_namespace_bytes_limit_is_exact(self, limits: Limits, mem: Memory) -> None:
        value = "x" * (limits.max_value_bytes - 2)
        per_key = len("kNN") + limits.max_value_bytes
        count = limits.max_namespace_bytes // per_key
        for i in range(count):  # one by one: a server caps a request body at ~16 values
            mem.set(f"k{i:02d}", value)
        room = limits.max_namespace_bytes - count * per_key
        last = "y" * (room - len("last") - 2)
        mem.set("last", last)
        assert mem.usage().bytes == limits.max_namespace_bytes
        with pytest.raises(QuotaExceeded, match="bytes"):
            mem.set("z", 1)
        with pytest.raises(QuotaExceeded):
            mem.append("last-list", 1)
        mem.set("last", last[:-1])  # shrinking is always allowed
        assert mem.usage().bytes == limits.max_namespace_bytes - 1

    def test_expired_entries_do_not_count_against_quota(
        self, limits: Limits, backend: Any, mem: Memory
    ) -> None:
        # A TTL far beyond the fill's real duration: only the test's clock expires them (with
        # 5 s, a slow fill let the first keys expire for real before the quota check).
        _set_many(mem, {f"k{i}": i for i in range(limits.max_keys)}, ttl=3600)
        with pytest.raises(QuotaExceeded):
            mem.set("new", 1)
        backend.advance(3601)
        mem.set("new", 1)
        assert mem.usage().keys == 1
