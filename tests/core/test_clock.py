"""One movable clock (``botwire._clock.TestingClock``) for the server's ``--testing-clock`` and
the tests' embedded backends."""

from __future__ import annotations

import pytest
from support.backends import FakeClock

from botwire import Memory
from botwire._clock import TestingClock
from botwire.store import SQLiteStore


def test_the_tests_clock_is_the_servers() -> None:
    from botwire_server.storage import TestingClock as ServerClock

    assert FakeClock is TestingClock is ServerClock


def test_it_moves_forward_and_ttls_see_it(tmp_path) -> None:
    clock = TestingClock()
    store = SQLiteStore(tmp_path / "c.db", clock=clock)
    try:
        memory = Memory("ns", store=store)
        memory.set("k", 1, ttl=60)
        assert memory.get("k") == 1
        before = clock()
        assert clock.advance(61) >= before + 61
        assert memory.get("k") is None
    finally:
        store.close()


def test_it_refuses_to_go_back_and_says_how() -> None:
    clock = TestingClock()
    with pytest.raises(ValueError, match=r"only moves forward.*-5.*new clock"):
        clock.advance(-5)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(float("nan"))
    assert clock.offset == 0.0
