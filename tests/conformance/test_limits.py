"""Limits and quotas are exact at the boundary and never lose what is stored.

Backends run with support.backends.LIMITS: 100,000-byte values, 2,000,000 bytes, 3000 keys and
5000 writes per namespace per day.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.backends import LIMITS

from botwire import InvalidArgument, Memory, QuotaExceeded, ValueTooLarge


def test_batches_are_limited_to_1000_ops(mem: Memory) -> None:
    with pytest.raises(InvalidArgument, match="1000"):
        mem.set_many({f"k{i}": i for i in range(1001)})
    assert mem.list() == []


def test_value_size_limit_is_exact(mem: Memory) -> None:
    just = "x" * (LIMITS.max_value_bytes - 2)  # + 2 quotes = the limit
    mem.set("k", just)
    with pytest.raises(ValueTooLarge) as info:
        mem.set("k", just + "y")
    assert "'k'" in str(info.value) and str(LIMITS.max_value_bytes) in str(info.value)
    assert mem.get("k") == just
    with pytest.raises(ValueTooLarge):
        mem.append("h", "ok", just + "y")
    assert "h" not in mem


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


def test_writes_per_day_is_exact(mem: Memory) -> None:
    n = LIMITS.writes_per_day
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


def test_writes_quota_resets_at_midnight(backend: Any, mem: Memory) -> None:
    _incr_times(mem, "c", LIMITS.writes_per_day)
    with pytest.raises(QuotaExceeded) as info:
        mem.incr("c")
    backend.advance(info.value.retry_after + 1)
    assert mem.incr("c") == LIMITS.writes_per_day + 1


def test_key_count_limit_is_exact(mem: Memory) -> None:
    n = LIMITS.max_keys
    _set_many(mem, {f"k{i}": i for i in range(n)})
    mem.set("k0", "overwrite is fine")
    with pytest.raises(QuotaExceeded, match="keys"):
        mem.set("one-more", 1)
    assert mem.delete("k1")
    mem.set("one-more", 1)
    assert mem.usage().keys == n


def test_namespace_bytes_limit_is_exact(mem: Memory) -> None:
    value = "x" * (LIMITS.max_value_bytes - 2)
    per_key = len("kNN") + LIMITS.max_value_bytes
    count = LIMITS.max_namespace_bytes // per_key
    for i in range(count):  # one by one: a server caps a request body at ~16 values
        mem.set(f"k{i:02d}", value)
    room = LIMITS.max_namespace_bytes - count * per_key
    last = "y" * (room - len("last") - 2)
    mem.set("last", last)
    assert mem.usage().bytes == LIMITS.max_namespace_bytes
    with pytest.raises(QuotaExceeded, match="bytes"):
        mem.set("z", 1)
    with pytest.raises(QuotaExceeded):
        mem.append("last-list", 1)
    mem.set("last", last[:-1])  # shrinking is always allowed
    assert mem.usage().bytes == LIMITS.max_namespace_bytes - 1


def test_expired_entries_do_not_count_against_quota(backend: Any, mem: Memory) -> None:
    _set_many(mem, {f"k{i}": i for i in range(LIMITS.max_keys)}, ttl=5)
    with pytest.raises(QuotaExceeded):
        mem.set("new", 1)
    backend.advance(6)
    mem.set("new", 1)
    assert mem.usage().keys == 1
