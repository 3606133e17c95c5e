"""``watch``/``watch_prefix`` over HTTP with a timeout longer than the server takes per poll
(``_wire.MAX_WAIT``, an hour) or ``inf``: the client asks at most that much per poll and polls
again, so the watch waits for the change, as it does on the embedded store. Before the fix
4000 s failed with "query parameter wait='4000.000' must be seconds in 0..3600" and ``inf``
with an OverflowError."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from support.server import ServerProcess

from botwire import Memory


@pytest.mark.parametrize("timeout", [4000.0, float("inf")], ids=["4000", "inf"])
@pytest.mark.parametrize("how", ["watch", "watch_prefix"])
def test_a_watch_longer_than_a_poll_waits_for_the_change(
    client: Any, server: ServerProcess, ns: str, truth: Memory, timeout: float, how: str
) -> None:
    m = client(ns, url=server.url)
    version = truth.set("k", 1)
    writer = threading.Timer(0.3, truth.set, args=("k", 2))
    writer.start()
    try:
        if how == "watch":
            entry = m.watch("k", after=version, timeout=timeout)
            assert entry is not None and entry.value == 2
        else:
            found = m.watch_prefix("k", after=version, timeout=timeout)
            assert [e.value for e in found.entries] == [2]
    finally:
        writer.join()
