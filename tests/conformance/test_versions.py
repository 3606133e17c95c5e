"""Versions: monotonic across the store, no reuse after delete + recreate, compare-and-set."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import Conflict, Memory


def test_versions_increase_across_keys_and_namespaces(backend: Any, ns: str) -> None:
    a, b = backend.memory(ns + "-a"), backend.memory(ns + "-b")
    versions = [
        a.set("x", 1),
        b.set("x", 1),
        a.set("y", 1),
        a.set("x", 2),
        b.incr("n") and b.entry("n").version,
    ]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_entry_metadata(mem: Memory) -> None:
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


def test_if_version(mem: Memory) -> None:
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


def test_if_absent(mem: Memory) -> None:
    v = mem.set("k", 1, if_absent=True)
    with pytest.raises(Conflict) as info:
        mem.set("k", 2, if_absent=True)
    assert info.value.current_version == v
    assert mem.get("k") == 1


def test_delete_and_recreate_never_reuses_a_version(mem: Memory) -> None:
    v1 = mem.set("k", "a")
    assert mem.delete("k") is True
    assert mem.delete("k") is False  # idempotent
    v2 = mem.set("k", "a")
    assert v2 > v1
    with pytest.raises(Conflict):  # no ABA: the old version does not match the new entry
        mem.set("k", "b", if_version=v1)


def test_conditional_delete(mem: Memory) -> None:
    v = mem.set("k", 1)
    with pytest.raises(Conflict) as info:
        mem.delete("k", if_version=v + 1000)
    assert info.value.current_version == v
    assert mem.delete("k", if_version=v) is True
    with pytest.raises(Conflict):
        mem.delete("k", if_version=v)


def test_update_applies_fn_with_cas(mem: Memory) -> None:
    assert mem.update("counter", lambda n: n + 1, default=0) == 1
    assert mem.update("counter", lambda n: n * 10) == 10
    assert mem.update("prefs", lambda p: {**p, "tone": "brief"}, default={}) == {"tone": "brief"}
    assert mem.get("prefs") == {"tone": "brief"}


def test_update_retries_on_conflict(mem: Memory) -> None:
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
