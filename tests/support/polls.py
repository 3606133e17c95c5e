"""Held ``/changes`` long-polls on raw sockets, for tests of what wakes (or bounds) them."""

from __future__ import annotations

import json
import re
import socket
from typing import Any
from urllib.parse import quote

import httpx

from support.server import ServerProcess


def hold_poll(
    server: ServerProcess, ns: str, *, after: int = 0, prefix: str = "", wait: float = 30
) -> socket.socket:
    """Open a long-poll on ``ns`` (under ``prefix``, after version ``after``) and return the
    socket once the server holds it (no answer within 0.3 s)."""
    sock = socket.create_connection((server.host, server.port))
    query = f"after={after}&wait={wait:g}" + (f"&prefix={quote(prefix)}" if prefix else "")
    sock.sendall(
        f"GET /v1/namespaces/{ns}/changes?{query} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n\r\n".encode()
    )
    sock.settimeout(0.3)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return sock  # nothing yet: it is held
    raise AssertionError(f"not held: {data[:300]!r}")


def poll_answer(sock: socket.socket, timeout: float = 10) -> dict[str, Any]:
    """The held poll's answer (its JSON body), within ``timeout`` seconds."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    assert found is not None, head
    while len(body) < int(found.group(1)):
        body += sock.recv(65536)
    answer: dict[str, Any] = json.loads(body)
    return answer


def still_held(sock: socket.socket) -> bool:
    """Whether the poll on ``sock`` has not been answered (nothing to read within 50 ms)."""
    sock.settimeout(0.05)
    try:
        return not sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True


def wakes(server: ServerProcess) -> float:
    """The server's ``botwire_watch_wakes_total``: held polls woken to read again so far."""
    text = httpx.get(f"{server.url}/metrics").text
    found = re.search(r"^botwire_watch_wakes_total (\S+)$", text, re.M)
    assert found is not None, text[-2000:]
    return float(found.group(1))
