"""Bulk calls past 1,000 keys: ``get_many``/``delete_many`` split transparently; ``set_many`` and
``atomic()`` stay atomic and refuse more than 1,000 ops before any I/O, saying so.

2,500 keys, ``Memory`` and ``AsyncMemory``, a real server and the embedded store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botwire import InvalidArgument, InvalidKey
from botwire._common import BATCH_LIMIT
from botwire.store._sql import MAX_BATCH_OPS

N = 2500


@pytest.fixture(params=["http", "embedded"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "http":
        yield request.getfixturevalue("server").url
    else:
        yield f"sqlite:///{tmp_path}/embedded.db"


def _keys(n: int = N) -> list[str]:
    return [f"k{i:05d}" for i in range(n)]


def test_client_limit_is_the_store_limit() -> None:
    assert BATCH_LIMIT == MAX_BATCH_OPS == 1000


def test_2500_keys_read_and_deleted_in_one_call(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    keys = _keys()
    for start in range(0, N, BATCH_LIMIT):  # set_many stays atomic: the caller splits it
        m.set_many({k: i for i, k in enumerate(keys) if start <= i < start + BATCH_LIMIT})
    got = m.get_many([*keys, "absent"])
    assert got == {k: i for i, k in enumerate(keys)}
    assert len(m.entries(keys)) == N
    assert m.delete_many([*keys, "absent"]) == N
    assert m.get_many(keys) == {} and m.list() == []


def test_2500_deletes_with_an_idempotency_key_replay_per_slice(
    client: Any, url: str, ns: str
) -> None:
    m = client(ns, url=url)
    keys = _keys()
    for start in range(0, N, BATCH_LIMIT):
        m.set_many({k: 1 for k in keys[start : start + BATCH_LIMIT]})
    assert m.delete_many(keys, idempotency_key="req-7:purge") == N
    assert m.delete_many(keys, idempotency_key="req-7:purge") == N  # the retry, replayed
    assert m.delete_many(keys) == 0


def test_set_many_past_the_limit_is_refused_before_any_io(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    with pytest.raises(InvalidArgument) as info:
        m.set_many({k: 1 for k in _keys()})
    text = str(info.value)
    assert ns in text and "2500" in text and "1000" in text and "atomic" in text
    tx = m.atomic()
    for k in _keys(BATCH_LIMIT + 1):
        tx.set(k, 1)
    with pytest.raises(InvalidArgument, match="1001 operations"):
        tx.commit()
    assert m.list() == []  # nothing stored by either
    assert m.set_many({k: 1 for k in _keys(BATCH_LIMIT)}) > 0  # exactly the limit is fine


def test_a_bad_key_anywhere_is_refused_before_the_first_slice(
    client: Any, url: str, ns: str
) -> None:
    m = client(ns, url=url)
    m.set("k00000", 1)
    with pytest.raises(InvalidKey):
        m.delete_many([*_keys(), ""])  # the bad key is in the third slice
    assert m.get("k00000") == 1
