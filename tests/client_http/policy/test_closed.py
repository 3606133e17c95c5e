"""A closed ``Memory``/``AsyncMemory`` raises :class:`botwire.Closed` (a ``BotWireError``),
never a raw ``sqlite3.ProgrammingError``; other handles on the same backend keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botwire import BotWireError, Closed, Memory


@pytest.fixture(params=["http", "embedded"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "http":
        yield request.getfixturevalue("server").url
    else:
        yield f"sqlite:///{tmp_path}/embedded.db"


def test_every_call_on_a_closed_handle_raises_closed(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    m.set("k", 1)
    m.close()
    calls = [
        lambda: m.get("k"),
        lambda: m.set("k", 2),
        lambda: m.append("h", 1),
        lambda: m.get_many(["k"]),
        lambda: m.list(),
        lambda: m.usage(),
        lambda: m.clear(),
        lambda: m.atomic().set("k", 3).commit(),
        lambda: m.delete("k"),
    ]
    for call in calls:
        with pytest.raises(Closed) as info:
            call()
        assert isinstance(info.value, BotWireError)
        assert ns in str(info.value) and "closed" in str(info.value)
    m.close()  # closing twice is harmless
    again = client(ns, url=url)
    assert again.get("k") == 1  # nothing stored was affected


def test_with_block_closes_and_then_raises_closed(url: str, ns: str) -> None:
    with Memory(ns, url=url) as m:
        m.set("k", 1)
    with pytest.raises(Closed):
        m.get("k")
    with Memory(ns, url=url) as other:
        assert other.get("k") == 1
