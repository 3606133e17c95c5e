"""Values round-trip with exactly the type stored; non-JSON is refused before any I/O."""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botwire import InvalidKey, Memory, NotSerializable

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


@pytest.mark.parametrize("value", EXACT, ids=repr)
def test_value_round_trips_with_its_type(mem: Memory, value: Any) -> None:
    mem.set("k", value)
    got = mem.get("k", default="<absent>")
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, dict):
        assert list(got) == list(value)
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)


def test_stored_none_is_present(mem: Memory) -> None:
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
def test_non_json_is_refused_before_io(mem: Memory, value: Any, named: str) -> None:
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


def test_circular_value_is_refused(mem: Memory) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(NotSerializable, match="circular"):
        mem.set("k", loop)


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
legal_keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
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


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=legal_keys, value=json_values)
def test_any_legal_key_and_json_value_round_trips(mem: Memory, key: str, value: Any) -> None:
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
def test_illegal_keys_name_the_rule(mem: Memory, key: Any, rule: str) -> None:
    with pytest.raises(InvalidKey) as info:
        mem.set(key, 1)
    assert isinstance(info.value, ValueError)
    assert rule in str(info.value) and mem.namespace in str(info.value)
    with pytest.raises(InvalidKey):
        mem.get(key)


def test_longest_legal_key(mem: Memory) -> None:
    key = "€" * 341 + "x"  # 1024 bytes
    mem.set(key, 1)
    assert mem.get(key) == 1
    assert mem.list() == [key]
