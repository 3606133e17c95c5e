"""A call ends by its documented deadline, ``timeout x (retries + 1)``, however slowly the peer
sends: each attempt ends ``timeout`` after it began (``min`` the call's deadline), not after
``timeout`` of silence. Before the fix a peer trickling one byte every 0.2 s held a call with a
2 s deadline for as long as it kept trickling (~34 s in the tester's report), sync and async.
"""

from __future__ import annotations

import socket
import time

import pytest
from client_http.rawpeer import RawPeer, Serve
from client_http.transport.conftest import Client

from botwire import Unavailable

BODY = b'{"key":"k","value":"' + b"x" * 40 + b'","version":1,"created_at":0,"updated_at":0}'


def _trickle(conn: socket.socket, index: int, head: bytes, rest: bytes) -> bool:
    head_out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    conn.sendall(head_out + b"Content-Length: %d\r\n\r\n" % len(BODY))
    for byte in BODY:  # 90 bytes, 0.2 s apart: 18 s in all
        time.sleep(0.2)
        conn.sendall(bytes([byte]))
    return False


def _trickle_head(conn: socket.socket, index: int, head: bytes, rest: bytes) -> bool:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 60:  # never even a whole head
        time.sleep(0.2)
        conn.sendall(bytes([byte]))
    return False


@pytest.mark.parametrize("serve", [_trickle, _trickle_head], ids=["body", "head"])
def test_a_trickling_peer_cannot_hold_a_call_past_its_deadline(
    ns: str, kind: str, serve: Serve
) -> None:
    with RawPeer(serve) as peer, Client(kind, ns, url=peer.url, timeout=0.6, retries=1) as m:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            m.get("k")
        elapsed = time.monotonic() - started
    print(f"FIGURE trickle {kind}: Unavailable after {elapsed:.2f} s (deadline 1.2 s)")
    assert elapsed < 1.2 + 0.8  # the deadline, and slack for a loaded machine
    assert "2 attempts" in str(info.value) and "timed out" in str(info.value)
