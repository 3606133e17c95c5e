"""Oversized values: ``ValueTooLarge`` naming the limit, after at most one upload, within a
couple of seconds. Before the fix a 20 MB value over the 1 MiB limit made the server reset the
connection mid-upload; the client sent the body 4 times and reported ``Unavailable``.

The sync client sends bodies above 256 KiB with ``Expect: 100-continue``: the server's 413
arrives before any of the body is sent. httpx (async) cannot wait for ``100 Continue``; it
sends the body once; the server reads and discards it (up to 64 MiB, only when the client did
not ask for ``100 Continue``) so that its 413 is not destroyed by a connection reset.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from client_http.transport.conftest import Client
from support.relay import Relay
from support.server import ServerProcess

from botwire import ValueTooLarge

BIG = 20_000_000


@pytest.fixture
def counted(server: ServerProcess) -> Iterator[Relay]:
    with Relay(server.port) as relay:
        yield relay


@pytest.mark.parametrize("op", ["set", "append", "set_many"])
def test_an_oversized_value_is_value_too_large_after_at_most_one_upload(
    counted: Relay, ns: str, kind: str, op: str
) -> None:
    value = "x" * BIG
    with Client(kind, ns, url=counted.url, timeout=10, retries=3) as m:
        started = time.monotonic()
        call = {
            "set": lambda: m.set("big", value),
            "append": lambda: m.append("big", value),
            "set_many": lambda: m.set_many({"small": 1, "big": value}),
        }[op]
        with pytest.raises(ValueTooLarge) as info:
            call()
        elapsed = time.monotonic() - started
        print(
            f"FIGURE large {kind} {op}: ValueTooLarge after {elapsed * 1000:.0f} ms, "
            f"{counted.bytes_up:,} bytes uploaded for a {BIG:,}-byte value"
        )
        assert f"limit of {info.value.details['limit']} bytes" in str(info.value)
        assert counted.bytes_up < 1.1 * BIG  # at most one upload
        # the connection pool is still healthy afterwards
        m.set("small", 1)
        assert m.get("small") == 1


def test_a_large_value_under_the_limit_goes_through_on_a_reused_connection(
    counted: Relay, ns: str, kind: str
) -> None:
    value = "y" * 600_000  # above the 256 KiB Expect threshold, under the 1 MiB limit
    with Client(kind, ns, url=counted.url, timeout=10, retries=0) as m:
        m.set("a", value)
        assert m.append("l", value) == 1
        assert m.get("a") == value
    assert counted.connections == 1
    assert counted.bytes_up < 2.1 * len(value)  # each body sent once


def test_a_peer_that_never_says_100_continue_still_gets_the_body(
    server: ServerProcess, ns: str, kind: str
) -> None:
    """FaultProxy reads whole requests before forwarding (as an HTTP/1.0 proxy would) and never
    sends ``100 Continue``: the sync client sends the body after waiting 1 s."""
    from support.faultproxy import FaultProxy

    value = "z" * 400_000
    with (
        FaultProxy(server.port) as proxy,
        Client(kind, ns, url=proxy.url, timeout=10, retries=0) as m,
    ):
        started = time.monotonic()
        m.set("a", value)
        print(
            f"FIGURE large {kind}: 400 kB through a peer without 100-continue: "
            f"{(time.monotonic() - started) * 1000:.0f} ms"
        )
        assert m.get("a") == value
