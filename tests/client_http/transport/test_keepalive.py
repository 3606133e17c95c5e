"""Idle expiry: a pooled connection idle longer than ``keepalive_expiry`` (argument, or
``BOTWIRE_KEEPALIVE_EXPIRY``; default 30 s, below our server's 75 s keep-alive and far below a
NAT gateway's 350 s) is closed, not reused. A NAT or load balancer that silently drops an idle
flow then costs a new connection, not a request hanging for the whole timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from client_http.transport.conftest import Client
from support.relay import Relay
from support.server import ServerProcess

from botwire import Unavailable
from botwire._config import resolve

DROP = 1.0  # the relay forgets a flow idle this long (a NAT gateway, scaled down)


@pytest.fixture
def nat(server: ServerProcess) -> Iterator[Relay]:
    with Relay(server.port, idle_drop=DROP) as relay:
        yield relay


def test_the_default_expiry_is_below_the_server_keep_alive_and_nat_timeouts() -> None:
    expiry = resolve("http://127.0.0.1:1").keepalive_expiry
    assert 0 < expiry < 75 < 350  # our server's timeout_keep_alive; AWS NAT's idle timeout


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_connection_idle_past_the_expiry_is_not_reused(
    nat: Relay, ns: str, kind: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, float] = {}
    if how == "argument":
        kwargs["keepalive_expiry"] = DROP / 2
    else:
        monkeypatch.setenv("BOTWIRE_KEEPALIVE_EXPIRY", str(DROP / 2))
    with Client(kind, ns, url=nat.url, timeout=5, retries=0, **kwargs) as m:
        m.set("k", "v1")
        assert m.get("k") == "v1"  # reused: still fresh
        assert nat.connections == 1
        time.sleep(DROP * 1.5)  # the flow is gone at the NAT
        started = time.monotonic()
        m.set("k", "v2")
        print(
            f"FIGURE keepalive {kind}: call after a silent idle drop took "
            f"{(time.monotonic() - started) * 1000:.1f} ms (timeout 5 s)"
        )
        assert m.get("k") == "v2"
    assert nat.blackholed == 0  # nothing was ever sent into the dead flow
    assert nat.connections == 2


def test_without_expiry_a_silently_dropped_flow_hangs_until_the_timeout(
    nat: Relay, ns: str, kind: str
) -> None:
    """The rig's own check (and what every call did before the fix): reusing the dropped flow
    gets no answer at all, the call waits out its timeout."""
    with Client(kind, ns, url=nat.url, timeout=1.0, retries=0, keepalive_expiry=3600) as m:
        m.set("k", "v1")
        time.sleep(DROP * 1.5)
        with pytest.raises(Unavailable):
            m.get("k")
    assert nat.blackholed == 1


def test_bad_expiry_values_are_refused_with_the_fix() -> None:
    from botwire import InvalidArgument

    with pytest.raises(InvalidArgument, match="keepalive_expiry"):
        resolve("http://127.0.0.1:1", keepalive_expiry=-1)
