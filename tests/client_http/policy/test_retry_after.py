"""A 502/503/504 is retried whatever its ``Retry-After`` says, after at least that wait, as
docs/client.md promises; a wait the call's deadline cannot reach ends the call at once with a
message saying so (what the server asked, how long botwire waits at most). Before the fix a 503
asking for more than 5 s, or giving a date, was final at once with the bare server message,
and ``nan``/``-inf``/``1_0`` were read as numbers by ``float()``."""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from typing import Any

import pytest
from client_http.rawpeer import RawPeer, answer

from botwire import Unavailable

DRAINING = b'{"error":{"code":"unavailable","message":"botwire: server is draining"}}'
ENTRY = b'{"key":"k","value":1,"version":1,"created_at":0,"updated_at":0}'


def _busy_then_ok(retry_after: str, busy: int = 1) -> Any:
    def serve(conn: socket.socket, index: int, head: bytes, rest: bytes) -> bool:
        if index <= busy:
            conn.sendall(answer(503, DRAINING, f"Retry-After: {retry_after}\r\n"))
        else:
            conn.sendall(answer(200, ENTRY))
        return True

    return serve


@pytest.mark.parametrize("retry_after", ["1", "1.0", "date"])
def test_a_503_is_retried_after_its_retry_after(client: Any, ns: str, retry_after: str) -> None:
    value = formatdate(time.time() + 2, usegmt=True) if retry_after == "date" else retry_after
    with RawPeer(_busy_then_ok(value)) as peer:
        m = client(ns, url=peer.url, timeout=5, retries=3)
        started = time.monotonic()
        assert m.get("k") == 1
        waited = time.monotonic() - started
    assert len(peer.heads) == 2
    assert waited >= 0.9  # the date is whole seconds: at least 1 s of its 2


@pytest.mark.parametrize("retry_after", ["nan", "-inf", "1_0", "-3", "soon"])
def test_an_unreadable_retry_after_is_ignored_and_the_503_retried(
    client: Any, ns: str, retry_after: str
) -> None:
    with RawPeer(_busy_then_ok(retry_after, busy=2)) as peer:
        m = client(ns, url=peer.url, timeout=5, retries=3)
        started = time.monotonic()
        assert m.get("k") == 1
        assert time.monotonic() - started < 2  # the backoff's waits, not 10 s for "1_0"
    assert len(peer.heads) == 3


@pytest.mark.parametrize("retry_after", ["120", "date"])
def test_a_retry_after_past_the_deadline_ends_the_call_at_once_saying_so(
    client: Any, ns: str, retry_after: str
) -> None:
    value = formatdate(time.time() + 3600, usegmt=True) if retry_after == "date" else "120"
    with RawPeer(_busy_then_ok(value, busy=99)) as peer:
        m = client(ns, url=peer.url, timeout=2, retries=3)
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            m.get("k")
        assert time.monotonic() - started < 1
    message = str(info.value)
    assert len(peer.heads) == 1 and "server is draining" in message
    assert "the server asked to retry after" in message and "(Retry-After)" in message
    assert "waits at most" in message and "deadline" in message and "8.0 s" in message
    asked = info.value.details["retry_after"]
    assert asked == 120 if retry_after == "120" else 3590 < asked <= 3600
