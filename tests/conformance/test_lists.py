"""Lists: atomic append, tail, pop, max_len, and interplay with set()."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import Memory, TypeMismatch


def _data_bytes(mem: Memory) -> int:
    """The namespace's data bytes (key + value JSON), summed from the listing: ``usage().bytes``
    also counts idempotency records (issue 13), which the HTTP client's keyed writes keep."""
    return sum(k.bytes for k in mem._store.list_keys(mem.namespace).keys)


def _check_bytes(mem: Memory, data: int) -> None:
    assert _data_bytes(mem) == data
    assert mem.usage().bytes >= data



def test_append_creates_and_grows(mem: Memory) -> None:
    assert mem.append("h", {"user": "hi"}) == 1
    assert mem.append("h", 2, "three", [4], None) == 5
    assert mem.get("h") == [{"user": "hi"}, 2, "three", [4], None]
    assert mem.tail("h", 2) == [[4], None]
    assert mem.tail("h", 0) == []
    assert mem.tail("h", 99) == mem.get("h")
    assert mem.tail("absent", 3) == []
    assert mem.append("empty") == 0
    assert mem.get("empty") == []


def test_pop(mem: Memory) -> None:
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


def test_max_len_trims_the_oldest(mem: Memory) -> None:
    for i in range(10):
        n = mem.append("h", i, max_len=3)
    assert n == 3
    assert mem.get("h") == [7, 8, 9]
    assert mem.append("h", "a", "b", "c", "d", "e", max_len=2) == 2
    assert mem.get("h") == ["d", "e"]
    _check_bytes(mem, 1 + len('["d","e"]'))


def test_set_list_then_append(mem: Memory) -> None:
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
def test_list_ops_on_non_lists_are_refused(mem: Memory, value: Any) -> None:
    mem.set("k", value)
    for call in (lambda: mem.append("k", 1), lambda: mem.pop("k"), lambda: mem.tail("k", 1)):
        with pytest.raises(TypeMismatch) as info:
            call()
        assert "'k'" in str(info.value) and "list" in str(info.value)
    assert mem.get("k") == value


def test_list_bytes_are_accounted(mem: Memory) -> None:
    mem.append("h", "ab", "c")
    _check_bytes(mem, 1 + len('["ab","c"]'))
    mem.pop("h")
    _check_bytes(mem, 1 + len('["ab"]'))
    mem.delete("h")
    # The append's kept answer (a length, no values) outlives the delete and still counts.
    _check_bytes(mem, 0)


def test_long_list_round_trips_in_order(mem: Memory) -> None:
    with mem.atomic() as tx:
        for i in range(300):
            tx.append("h", {"i": i})
    assert [x["i"] for x in mem.get("h")] == list(range(300))
    assert [x["i"] for x in mem.tail("h", 5)] == [295, 296, 297, 298, 299]
