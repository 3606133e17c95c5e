"""Memory is a MutableMapping; ``in`` tests existence, not truthiness; keys in byte order."""

from __future__ import annotations

from collections.abc import MutableMapping

import pytest

from botwire import Memory


def test_mutable_mapping_protocol(mem: Memory) -> None:
    assert isinstance(mem, MutableMapping)
    mem["a"] = 1
    mem["b"] = None
    mem["c"] = []
    assert mem["a"] == 1 and mem["b"] is None and mem["c"] == []
    assert "b" in mem and "c" in mem and "z" not in mem
    assert len(mem) == 3
    assert sorted(iter(mem)) == ["a", "b", "c"]
    assert dict(mem.items()) == {"a": 1, "b": None, "c": []}
    del mem["a"]
    with pytest.raises(KeyError):
        del mem["a"]
    with pytest.raises(KeyError):
        mem["a"]
    mem.update({"x": 1}, y=2)
    assert mem.get_many(["x", "y"]) == {"x": 1, "y": 2}
    assert bool(mem.with_namespace(mem.namespace + "-empty")) is True


def test_keys_in_utf8_byte_order_with_prefix(mem: Memory) -> None:
    keys = ["b", "a", "ab", "a/b", "a b", "é", "🤖", "Z", "a\uffff", "aa", "~"]
    mem.set_many({k: k for k in keys})
    assert mem.list() == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert mem.keys() == mem.list()
    assert mem.list(prefix="a") == sorted(
        [k for k in keys if k.startswith("a")], key=lambda k: k.encode()
    )
    assert mem.list(prefix="a\uffff") == ["a\uffff"]
    assert mem.list(prefix="🤖") == ["🤖"]
    assert mem.list(prefix="nothing") == []


def test_listing_follows_every_page(mem: Memory) -> None:
    keys = [f"key-{i:05d}" for i in range(2345)]
    for i in range(0, len(keys), 1000):
        mem.set_many({k: None for k in keys[i : i + 1000]})
    assert mem.list() == keys
    assert list(mem.iter_keys("key-01")) == [k for k in keys if k.startswith("key-01")]
