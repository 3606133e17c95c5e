"""TTL: expired entries vanish at once (moved clock, no sleeps) and free their quota."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import Conflict, InvalidArgument, Memory


def test_expired_entries_are_invisible(backend: Any, mem: Memory) -> None:
    mem.set("short", "s", ttl=10)
    mem.set("long", "l", ttl=1000)
    mem.set("forever", "f")
    e = mem.entry("short")
    assert e is not None and e.expires_at is not None
    assert 9 < e.expires_at - e.updated_at <= 10.001
    backend.advance(11)
    assert mem.get("short", "gone") == "gone"
    assert mem.entry("short") is None
    assert "short" not in mem
    assert mem.list() == ["forever", "long"]
    assert mem.get_many(["short", "long"]) == {"long": "l"}
    backend.advance(1000)
    assert mem.list() == ["forever"]
    assert mem.usage().keys == 1


def test_set_without_ttl_clears_expiry(backend: Any, mem: Memory) -> None:
    mem.set("k", 1, ttl=10)
    mem.set("k", 2)
    backend.advance(20)
    assert mem.get("k") == 2


def test_append_with_ttl_refreshes_and_without_keeps(backend: Any, mem: Memory) -> None:
    mem.append("h", 1, ttl=10)
    backend.advance(8)
    mem.append("h", 2, ttl=10)  # refreshed: now expires 10 s from here
    backend.advance(8)
    assert mem.get("h") == [1, 2]
    mem.append("h", 3)  # no ttl: keeps the current expiry
    backend.advance(3)
    assert mem.get("h") is None


def test_expired_key_is_absent_for_conditions(backend: Any, mem: Memory) -> None:
    v = mem.set("k", 1, ttl=5)
    backend.advance(6)
    with pytest.raises(Conflict):
        mem.set("k", 2, if_version=v)
    v2 = mem.set("k", 3, if_absent=True)
    assert v2 > v and mem.get("k") == 3
    mem.set("n", 10, ttl=5)
    backend.advance(6)
    assert mem.incr("n") == 1  # an expired counter starts again
    mem.append("l", 1, ttl=5)
    backend.advance(6)
    assert mem.append("l", 2) == 1 and mem.get("l") == [2]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_ttl_is_refused(mem: Memory, ttl: Any) -> None:
    with pytest.raises(InvalidArgument, match="ttl"):
        mem.set("k", 1, ttl=ttl)
    assert "k" not in mem
