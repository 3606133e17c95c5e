"""incr: atomic adds on numbers."""

from __future__ import annotations

from typing import Any

import pytest

from botwire import InvalidArgument, Memory, TypeMismatch


def test_incr(mem: Memory) -> None:
    assert mem.incr("n") == 1
    assert mem.incr("n", 41) == 42
    assert mem.incr("n", -2) == 40
    assert type(mem.get("n")) is int
    assert mem.incr("f", 0.5) == 0.5
    assert mem.incr("f", 1) == 1.5
    mem.set("big", 2**62)
    assert mem.incr("big", 2**62) == 2**63


@pytest.mark.parametrize("value", ["5", [1], {"a": 1}, True, None])
def test_incr_on_non_number_is_refused(mem: Memory, value: Any) -> None:
    mem.set("k", value)
    with pytest.raises(TypeMismatch, match="number"):
        mem.incr("k")
    assert mem.get("k") == value


@pytest.mark.parametrize("by", [float("nan"), float("inf"), "1", True, None])
def test_incr_amount_must_be_finite_number(mem: Memory, by: Any) -> None:
    with pytest.raises(InvalidArgument):
        mem.incr("k", by)
    assert "k" not in mem
