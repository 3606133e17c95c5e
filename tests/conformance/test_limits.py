"""Limits and quotas are exact at the boundary and never lose what is stored.

Backends run with support.backends.LIMITS: 100,000-byte values, 2,000,000 bytes, 3000 keys and
5000 writes per namespace per day.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.backends import LIMITS

from botwire import Memory, QuotaExceeded, ValueTooLarge


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


def test_writes_per_day_is_exact(mem: Memory) -> None:
    n = LIMITS.writes_per_day
    tx = mem.atomic()
    for _ in range(n - 1):
        tx.incr("c")
    tx.commit()
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
    tx = mem.atomic()
    for _ in range(LIMITS.writes_per_day):
        tx.incr("c")
    tx.commit()
    with pytest.raises(QuotaExceeded) as info:
        mem.incr("c")
    backend.advance(info.value.retry_after + 1)
    assert mem.incr("c") == LIMITS.writes_per_day + 1


def test_key_count_limit_is_exact(mem: Memory) -> None:
    n = LIMITS.max_keys
    mem.set_many({f"k{i}": i for i in range(n)})
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
    mem.set_many({f"k{i:02d}": value for i in range(count)})
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
    mem.set_many({f"k{i}": i for i in range(LIMITS.max_keys)}, ttl=5)
    with pytest.raises(QuotaExceeded):
        mem.set("new", 1)
    backend.advance(6)
    mem.set("new", 1)
    assert mem.usage().keys == 1
