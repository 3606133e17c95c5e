"""Values, keys, the mapping interface and namespaces: what goes in comes out, exactly."""

from __future__ import annotations

import datetime
import math
from collections.abc import MutableMapping
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .._errors import InvalidKey, InvalidNamespace, NotSerializable
from .._memory import Memory
from ._base import Cases, check_bytes

__all__ = ["MappingCases", "NamespaceCases", "ValueCases"]


EXACT = [
    5,
    -7,
    2**70,
    0.5,
    5.0,
    -0.0,
    1e300,
    "5",
    "",
    '{"a": 1}',
    "[1, 2]",
    "null",
    True,
    False,
    None,
    [],
    {},
    [1, "1", 1.0, None, True, [], {}],
    {"nested": {"deep": [{"x": [1, 2, {"y": None}]}]}, "ü": "€", "emoji": "🤖"},
    {"b": 1, "a": 2},  # key order is kept
]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
legal_keys = st.text(
    alphabet=st.characters(blacklist_categories=_SURROGATES, blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
) | st.sampled_from(
    [
        "/",
        "#",
        "?",
        "%",
        "..",
        ".",
        " ",
        ":",
        "a#b",
        "x?y=1",
        "a/../b",
        "%2F",
        "%00",
        "🤖 emoji",
        "tab\there",
        "new\nline",
        "+plus",
        "~",
        "*",
        "\\",
    ]
)


class ValueCases(Cases):
    """Values round-trip with exactly the type stored; non-JSON is refused before any I/O."""

    @pytest.mark.parametrize("value", EXACT, ids=repr)
    def test_value_round_trips_with_its_type(self, mem: Memory, value: Any) -> None:
        mem.set("k", value)
        got = mem.get("k", default="<absent>")
        assert got == value
        assert type(got) is type(value)
        if isinstance(value, dict):
            assert list(got) == list(value)
        if isinstance(value, float):
            assert math.copysign(1, got) == math.copysign(1, value)

    def test_stored_none_is_present(self, mem: Memory) -> None:
        mem.set("nothing", None)
        assert "nothing" in mem
        assert mem.get("nothing", "default") is None
        assert mem["nothing"] is None
        assert "absent" not in mem
        assert mem.get("absent", "default") == "default"

    @pytest.mark.parametrize(
        ("value", "named"),
        [
            (float("nan"), "NaN"),
            (float("inf"), "NaN or Infinity"),
            ({"a": [1, float("-inf")]}, "NaN or Infinity"),
            ({1, 2}, "set"),
            (datetime.datetime(2024, 1, 15), "datetime"),
            (object(), "object"),
            ({"a": b"bytes"}, "bytes"),
            ("\ud800", "surrogate"),
            ({"k": ["ok", "x\udfffy"]}, "surrogate"),
        ],
    )
    def test_non_json_is_refused_before_io(self, mem: Memory, value: Any, named: str) -> None:
        mem.set("k", "before")
        with pytest.raises(NotSerializable) as info:
            mem.set("k", value)
        assert isinstance(info.value, TypeError)
        message = str(info.value)
        assert "'k'" in message and mem.namespace in message and named in message
        assert mem.get("k") == "before"  # nothing stored was lost or corrupted
        with pytest.raises(NotSerializable):
            mem.append("list", value)
        assert "list" not in mem

    def test_circular_value_is_refused(self, mem: Memory) -> None:
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(NotSerializable, match="circular"):
            mem.set("k", loop)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=legal_keys, value=json_values)
    def test_any_legal_key_and_json_value_round_trips(
        self, mem: Memory, key: str, value: Any
    ) -> None:
        mem.set(key, value)
        got = mem.get(key, default="<absent>")
        assert got == value or (got != got and value != value)
        assert type(got) is type(value)
        assert key in mem
        assert key in mem.list(prefix=key)
        assert mem.delete(key) is True

    @pytest.mark.parametrize(
        ("key", "rule"),
        [
            ("", "empty"),
            ("a\x00b", "NUL"),
            ("x" * 1025, "1024"),
            ("€" * 342, "1024"),  # 1026 bytes
            ("\ud800", "UTF-8"),
            (5, "str"),
        ],
    )
    def test_illegal_keys_name_the_rule(self, mem: Memory, key: Any, rule: str) -> None:
        with pytest.raises(InvalidKey) as info:
            mem.set(key, 1)
        assert isinstance(info.value, ValueError)
        assert rule in str(info.value) and mem.namespace in str(info.value)
        with pytest.raises(InvalidKey):
            mem.get(key)

    def test_longest_legal_key(self, mem: Memory) -> None:
        key = "€" * 341 + "x"  # 1024 bytes
        mem.set(key, 1)
        assert mem.get(key) == 1
        assert mem.list() == [key]


class MappingCases(Cases):
    """Memory is a MutableMapping; ``in`` tests existence, not truthiness; keys in byte order."""

    def test_mutable_mapping_protocol(self, mem: Memory) -> None:
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

    def test_keys_in_utf8_byte_order_with_prefix(self, mem: Memory) -> None:
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

    def test_listing_follows_every_page(self, mem: Memory) -> None:
        keys = [f"key-{i:05d}" for i in range(2345)]
        for i in range(0, len(keys), 1000):
            mem.set_many({k: None for k in keys[i : i + 1000]})
        assert mem.list() == keys
        assert list(mem.iter_keys("key-01")) == [k for k in keys if k.startswith("key-01")]


class NamespaceCases(Cases):
    """Namespace rules and isolation."""

    @pytest.mark.parametrize("name", ["a", "user-42", "a.b_c-d:e@f", "x" * 128, "..a", "A.Z"])
    def test_legal_namespaces(self, backend: Any, name: str) -> None:
        m = backend.memory(name)
        m.set("k", name)
        assert m.get("k") == name
        m.clear()

    @pytest.mark.parametrize(
        "name", ["", ".", "..", "x" * 129, "a/b", "a b", "a#b", "ü", 5, "a%2F"]
    )
    def test_illegal_namespaces_name_the_rule(self, backend: Any, name: Any) -> None:
        with pytest.raises(InvalidNamespace) as info:
            backend.memory(name)
        assert isinstance(info.value, ValueError)
        assert "namespace" in str(info.value)

    def test_namespaces_are_isolated(self, backend: Any, ns: str) -> None:
        a, b = backend.memory(ns + "-a"), backend.memory(ns + "-b")
        a.set("k", "a")
        b.set("k", "b")
        a.append("l", 1)
        assert (a.get("k"), b.get("k")) == ("a", "b")
        assert b.get("l") is None and b.list() == ["k"]
        assert a.clear() == 2
        assert b.get("k") == "b"

    def test_clear_and_usage(self, mem: Memory) -> None:
        mem.set_many({"a": 1, "b": "xx"})
        mem.append("c", 1, 2)
        u = mem.usage()
        assert u.namespace == mem.namespace
        assert u.keys == 3
        # bytes = key + value as JSON: a1 + b"xx" + c[1,2]
        check_bytes(mem, (1 + 1) + (1 + 4) + (1 + 5))
        assert u.writes_today == 3
        assert u.resets_at > 0 and u.resets_at % 86400 == 0
        assert mem.clear() == 3
        assert mem.list() == [] and mem.get("a") is None and mem.usage().keys == 0
        check_bytes(mem, 0)  # over HTTP the clear keeps its own record (SupportsKeyedClear)
        assert mem.usage().bytes < 64
