"""Versions, counters, lists and TTL: the write operations' semantics."""

from __future__ import annotations

from typing import Any

import pytest

from .._errors import Conflict, InvalidArgument, TypeMismatch
from .._memory import Memory
from ._base import Cases, check_bytes

__all__ = ["CounterCases", "ListCases", "TTLCases", "VersionCases"]


class VersionCases(Cases):
    """Versions: monotonic across the store, no reuse after delete + recreate, compare-and-set."""

    def test_versions_increase_across_keys_and_namespaces(self, backend: Any, ns: str) -> None:
        a, b = backend.memory(ns + "-a"), backend.memory(ns + "-b")
        versions = [
            a.set("x", 1),
            b.set("x", 1),
            a.set("y", 1),
            a.set("x", 2),
            b.incr("n") and b.entry("n").version,
        ]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)

    def test_entry_metadata(self, mem: Memory) -> None:
        v1 = mem.set("k", {"a": 1})
        e1 = mem.entry("k")
        assert e1 is not None
        assert (e1.key, e1.value, e1.version, e1.expires_at) == ("k", {"a": 1}, v1, None)
        assert e1.created_at == e1.updated_at
        v2 = mem.set("k", 2)
        e2 = mem.entry("k")
        assert e2 is not None and e2.version == v2 > v1
        assert e2.created_at == e1.created_at and e2.updated_at >= e1.updated_at
        assert mem.entry("absent") is None

    def test_if_version(self, mem: Memory) -> None:
        v1 = mem.set("k", "one")
        v2 = mem.set("k", "two", if_version=v1)
        assert v2 > v1
        with pytest.raises(Conflict) as info:
            mem.set("k", "stale", if_version=v1)
        assert info.value.current_version == v2
        assert info.value.key == "k" and info.value.namespace == mem.namespace
        assert str(v2) in str(info.value) and "'k'" in str(info.value)
        assert mem.get("k") == "two"
        with pytest.raises(Conflict) as info:
            mem.set("absent", 1, if_version=v1)
        assert info.value.current_version is None
        assert "absent" not in mem

    def test_if_absent(self, mem: Memory) -> None:
        v = mem.set("k", 1, if_absent=True)
        with pytest.raises(Conflict) as info:
            mem.set("k", 2, if_absent=True)
        assert info.value.current_version == v
        assert mem.get("k") == 1

    def test_delete_and_recreate_never_reuses_a_version(self, mem: Memory) -> None:
        v1 = mem.set("k", "a")
        assert mem.delete("k") is True
        assert mem.delete("k") is False  # idempotent
        v2 = mem.set("k", "a")
        assert v2 > v1
        with pytest.raises(Conflict):  # no ABA: the old version does not match the new entry
            mem.set("k", "b", if_version=v1)

    def test_conditional_delete(self, mem: Memory) -> None:
        v = mem.set("k", 1)
        with pytest.raises(Conflict) as info:
            mem.delete("k", if_version=v + 1000)
        assert info.value.current_version == v
        assert mem.delete("k", if_version=v) is True
        with pytest.raises(Conflict):
            mem.delete("k", if_version=v)

    def test_update_applies_fn_with_cas(self, mem: Memory) -> None:
        assert mem.update("counter", lambda n: n + 1, default=0) == 1
        assert mem.update("counter", lambda n: n * 10) == 10
        assert mem.update("prefs", lambda p: {**p, "tone": "brief"}, default={}) == {
            "tone": "brief"
        }
        assert mem.get("prefs") == {"tone": "brief"}

    def test_update_retries_on_conflict(self, mem: Memory) -> None:
        mem.set("k", 0)
        calls = []

        def fn(value: int) -> int:
            calls.append(value)
            if len(calls) == 1:
                mem.set("k", 100)  # another writer sneaks in between read and write
            return value + 1

        assert mem.update("k", fn) == 101
        assert calls == [0, 100]
        assert mem.get("k") == 101


class CounterCases(Cases):
    """incr: atomic adds on numbers."""

    def test_incr(self, mem: Memory) -> None:
        assert mem.incr("n") == 1
        assert mem.incr("n", 41) == 42
        assert mem.incr("n", -2) == 40
        assert type(mem.get("n")) is int
        assert mem.incr("f", 0.5) == 0.5
        assert mem.incr("f", 1) == 1.5
        mem.set("big", 2**62)
        assert mem.incr("big", 2**62) == 2**63

    @pytest.mark.parametrize("value", ["5", [1], {"a": 1}, True, None])
    def test_incr_on_non_number_is_refused(self, mem: Memory, value: Any) -> None:
        mem.set("k", value)
        with pytest.raises(TypeMismatch, match="number"):
            mem.incr("k")
        assert mem.get("k") == value

    @pytest.mark.parametrize("by", [float("nan"), float("inf"), "1", True, None])
    def test_incr_amount_must_be_finite_number(self, mem: Memory, by: Any) -> None:
        with pytest.raises(InvalidArgument):
            mem.incr("k", by)
        assert "k" not in mem


class ListCases(Cases):
    """Lists: atomic append, tail, pop, max_len, and interplay with set()."""

    def test_append_creates_and_grows(self, mem: Memory) -> None:
        assert mem.append("h", {"user": "hi"}) == 1
        assert mem.append("h", 2, "three", [4], None) == 5
        assert mem.get("h") == [{"user": "hi"}, 2, "three", [4], None]
        assert mem.tail("h", 2) == [[4], None]
        assert mem.tail("h", 0) == []
        assert mem.tail("h", 99) == mem.get("h")
        assert mem.tail("absent", 3) == []
        assert mem.append("empty") == 0
        assert mem.get("empty") == []

    def test_pop(self, mem: Memory) -> None:
        mem.append("h", 1, 2, 3)
        assert mem.pop("h") == 3
        assert mem.pop("h") == 2
        assert mem.get("h") == [1]
        assert mem.append("h", 4) == 2
        assert mem.get("h") == [1, 4]
        assert mem.pop("h") == 4 and mem.pop("h") == 1
        assert mem.pop("h", "empty") == "empty"
        assert mem.get("h") == []
        assert mem.pop("absent", "d") == "d"

    def test_max_len_trims_the_oldest(self, mem: Memory) -> None:
        for i in range(10):
            n = mem.append("h", i, max_len=3)
        assert n == 3
        assert mem.get("h") == [7, 8, 9]
        assert mem.append("h", "a", "b", "c", "d", "e", max_len=2) == 2
        assert mem.get("h") == ["d", "e"]
        check_bytes(mem, 1 + len('["d","e"]'))

    def test_set_list_then_append(self, mem: Memory) -> None:
        """The DESIGN §0 example sets a whole list; append must then just work."""
        mem.set("h", [{"a": 1}, 2])
        assert mem.append("h", 3) == 3
        assert mem.get("h") == [{"a": 1}, 2, 3]
        assert mem.tail("h", 1) == [3]
        mem.set("h", ["fresh"])  # set replaces a list entirely
        assert mem.get("h") == ["fresh"]
        assert mem.pop("h") == "fresh" and mem.get("h") == []
        mem.set("arr", [1, 2, 3])
        assert mem.pop("arr") == 3 and mem.get("arr") == [1, 2]
        assert mem.tail("arr", 1) == [2]

    @pytest.mark.parametrize("value", [{"a": 1}, "text", 5, None, True])
    def test_list_ops_on_non_lists_are_refused(self, mem: Memory, value: Any) -> None:
        mem.set("k", value)
        for call in (lambda: mem.append("k", 1), lambda: mem.pop("k"), lambda: mem.tail("k", 1)):
            with pytest.raises(TypeMismatch) as info:
                call()
            assert "'k'" in str(info.value) and "list" in str(info.value)
        assert mem.get("k") == value

    def test_list_bytes_are_accounted(self, mem: Memory) -> None:
        mem.append("h", "ab", "c")
        check_bytes(mem, 1 + len('["ab","c"]'))
        mem.pop("h")
        check_bytes(mem, 1 + len('["ab"]'))
        mem.delete("h")
        # The append's kept answer (a length, no values) outlives the delete and still counts.
        check_bytes(mem, 0)

    def test_long_list_round_trips_in_order(self, mem: Memory) -> None:
        with mem.atomic() as tx:
            for i in range(300):
                tx.append("h", {"i": i})
        assert [x["i"] for x in mem.get("h")] == list(range(300))
        assert [x["i"] for x in mem.tail("h", 5)] == [295, 296, 297, 298, 299]


class TTLCases(Cases):
    """TTL: expired entries vanish at once (moved clock, no sleeps) and free their quota."""

    def test_expired_entries_are_invisible(self, backend: Any, mem: Memory) -> None:
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

    def test_set_without_ttl_clears_expiry(self, backend: Any, mem: Memory) -> None:
        mem.set("k", 1, ttl=10)
        mem.set("k", 2)
        backend.advance(20)
        assert mem.get("k") == 2

    def test_append_with_ttl_refreshes_and_without_keeps(self, backend: Any, mem: Memory) -> None:
        mem.append("h", 1, ttl=10)
        backend.advance(8)
        mem.append("h", 2, ttl=10)  # refreshed: now expires 10 s from here
        backend.advance(8)
        assert mem.get("h") == [1, 2]
        mem.append("h", 3)  # no ttl: keeps the current expiry
        backend.advance(3)
        assert mem.get("h") is None

    def test_expired_key_is_absent_for_conditions(self, backend: Any, mem: Memory) -> None:
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
    def test_bad_ttl_is_refused(self, mem: Memory, ttl: Any) -> None:
        with pytest.raises(InvalidArgument, match="ttl"):
            mem.set("k", 1, ttl=ttl)
        assert "k" not in mem
