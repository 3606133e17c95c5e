"""Namespace rules and isolation."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import InvalidNamespace, Memory


@pytest.mark.parametrize("name", ["a", "user-42", "a.b_c-d:e@f", "x" * 128, "..a", "A.Z"])
def test_legal_namespaces(backend: Any, name: str) -> None:
    m = backend.memory(name)
    m.set("k", name)
    assert m.get("k") == name
    m.clear()


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 129, "a/b", "a b", "a#b", "ü", 5, "a%2F"])
def test_illegal_namespaces_name_the_rule(backend: Any, name: Any) -> None:
    with pytest.raises(InvalidNamespace) as info:
        backend.memory(name)
    assert isinstance(info.value, ValueError)
    assert "namespace" in str(info.value)

def _data_bytes(mem: Memory) -> int:
    """The namespace's data bytes (key + value JSON), summed from the listing: ``usage().bytes``
    also counts idempotency records (issue 13), which the HTTP client's keyed writes keep."""
    return sum(k.bytes for k in mem._store.list_keys(mem.namespace).keys)


def _check_bytes(mem: Memory, data: int) -> None:
    assert _data_bytes(mem) == data
    assert mem.usage().bytes >= data



def test_namespaces_are_isolated(backend: Any, ns: str) -> None:
    a, b = backend.memory(ns + "-a"), backend.memory(ns + "-b")
    a.set("k", "a")
    b.set("k", "b")
    a.append("l", 1)
    assert (a.get("k"), b.get("k")) == ("a", "b")
    assert b.get("l") is None and b.list() == ["k"]
    assert a.clear() == 2
    assert b.get("k") == "b"


def test_clear_and_usage(mem: Memory) -> None:
    mem.set_many({"a": 1, "b": "xx"})
    mem.append("c", 1, 2)
    u = mem.usage()
    assert u.namespace == mem.namespace
    assert u.keys == 3
    # bytes = key + value as JSON: a1 + b"xx" + c[1,2]
    _check_bytes(mem, (1 + 1) + (1 + 4) + (1 + 5))
    assert u.writes_today == 3
    assert u.resets_at > 0 and u.resets_at % 86400 == 0
    assert mem.clear() == 3
    assert mem.list() == [] and mem.get("a") is None and mem.usage().keys == 0
    assert mem.usage().bytes == 0
