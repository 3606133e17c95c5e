"""The shared relay itself: an outage refuses connections for its duration and ends on time,
and passing traffic is byte-exact (POLICY's retry tests build on this)."""

from __future__ import annotations

import socket
import time

from client_http.transport.conftest import Client
from support.relay import Relay
from support.server import ServerProcess


def test_a_relay_outage_refuses_connections_then_recovers(
    server: ServerProcess, ns: str, kind: str
) -> None:
    with Relay(server.port) as relay, Client(kind, ns, url=relay.url, retries=0) as m:
        m.set("k", 1)
        relay.down(2.0)
        time.sleep(0.2)
        refused = connected = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            try:
                socket.create_connection(("127.0.0.1", relay.port), timeout=1).close()
                connected += 1
            except ConnectionRefusedError:
                refused += 1
            time.sleep(0.1)
        assert refused >= 3 and connected == 0  # down all along
        time.sleep(0.6)
        assert m.get("k") == 1  # back up, on a new connection (the old one was reset)
        assert relay.connections == 2
