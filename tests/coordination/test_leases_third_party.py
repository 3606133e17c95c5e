"""Leases need nothing but the six-method ``Store`` protocol: they work on a third party's store
(``tests/support/dictstore.py``), even one whose ``Conflict`` names no key."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.dictstore import DictStore

from botwire import Conflict, InvalidArgument, LeaseLost, Memory
from botwire._types import Op


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Anonymous:
    """A store whose Conflict says nothing about which key failed (as a careless author's)."""

    def __init__(self, inner: DictStore) -> None:
        self._inner = inner

    def batch(self, namespace: str, ops: list[Op], **kwargs: Any) -> Any:
        try:
            return self._inner.batch(namespace, ops, **kwargs)
        except Conflict as error:
            raise Conflict(error.message) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("names_key", [True, False], ids=["names-key", "anonymous-conflict"])
def test_a_third_party_store_gets_leases_and_fences(names_key: bool) -> None:
    clock = Clock()
    inner = DictStore(clock)
    m = Memory("tp", store=inner if names_key else Anonymous(inner))  # type: ignore[arg-type]
    old = m.lease("job", ttl=10, holder="first")
    token = old.acquire()
    with pytest.raises(Conflict, match="'first'"):
        m.lease("job").acquire()
    assert old.expires_at == clock.now + 10  # the store's clock decides
    m.set("k", "first", fence=old)
    version = m.entry("k").version
    with pytest.raises(Conflict) as own:  # the write's own condition: not a lost lease
        m.set("k", "x", if_version=version + 1, fence=old)
    assert type(own.value) is Conflict and old.token == token
    clock.now += 11
    new = m.lease("job", ttl=10)
    assert new.acquire() > token
    with pytest.raises(LeaseLost):
        m.set("k", "late", fence=old)
    with pytest.raises(LeaseLost):  # forfeit: refused before any I/O
        m.append("l", 1, fence=old)
    assert m.get("k") == "first" and m.get("l") is None
    assert old.release() is False and new.release() is True


def test_held_is_a_local_estimate_that_errs_only_towards_no() -> None:
    m = Memory("tp", store=DictStore(time.time))  # real time: the store's clock and ours agree
    lease = m.lease("job", ttl=0.3)
    assert not lease.held
    lease.acquire()
    assert lease.held
    time.sleep(0.35)  # past its ttl by this process's clock: the store has expired it too
    assert not lease.held
    assert m.get(".botwire/lease/job") is None
    assert lease.release() is False
    first = lease.acquire()
    assert lease.acquire() == first  # a no-op while held
    time.sleep(0.35)
    assert lease.acquire() > first  # expired locally: acquired afresh, a new token


def test_a_fenced_batch_over_the_atomic_limit_is_refused_before_any_io() -> None:
    m = Memory("tp", store=DictStore(time.time))
    with m.lease("job") as lease:
        with pytest.raises(InvalidArgument, match=r"fenced on a lease.*1001 operations"):
            m.set_many({f"k{i}": i for i in range(1000)}, fence=lease)
        assert m.list("k") == []
        m.set_many({f"k{i}": i for i in range(999)}, fence=lease)  # 999 + the fence: fits
        assert len(m.list("k")) == 999
