"""What a running server process does with its sockets and which native modules it loaded,
read from outside the process (Linux).

Example::

    from support.sockets import loaded_libraries, server_socket_option

    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/healthz"); conn.getresponse().read()
    nodelay = server_socket_option(
        server.proc.pid, conn.sock.getsockname(), socket.IPPROTO_TCP, socket.TCP_NODELAY
    )

``server_socket_option`` copies the server's end of the connection into this process with
``pidfd_getfd(2)`` (Linux 5.6; the caller may ptrace the server: same user, or root) and reads
the option from the copy: what the kernel applies to that connection, not what the code meant.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import socket
from pathlib import Path

__all__ = ["keepalive_nodelay", "loaded_libraries", "server_socket_option"]

_SYS_PIDFD_GETFD = 438  # the same number on every architecture (Linux 5.6's new table)


def _copy_fd(pid: int, fd: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = int(libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0))
    finally:
        os.close(pidfd)
    if copy < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd({pid}, {fd}): {os.strerror(err)}")
    return copy


def server_socket_option(pid: int, client_address: tuple[str, int], level: int, option: int) -> int:
    """``getsockopt(level, option)`` of process ``pid``'s end of the TCP connection whose peer
    is ``client_address`` (the client's ``getsockname()``)."""
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if not os.readlink(entry).startswith("socket:"):
                continue
        except OSError:  # closed meanwhile
            continue
        copy = _copy_fd(pid, int(entry.name))
        sock = socket.socket(fileno=copy)
        try:
            try:
                peer = sock.getpeername()
            except OSError:  # a listening or unconnected socket
                continue
            if tuple(peer[:2]) == tuple(client_address[:2]):
                return int(sock.getsockopt(level, option))
        finally:
            sock.close()  # the copy only: the server's descriptor stays open
    raise LookupError(f"process {pid} has no connection from {client_address}")


def loaded_libraries(pid: int) -> set[str]:
    """Paths of the files mapped into process ``pid`` (``/proc/PID/maps``): its native
    modules among them, e.g. ``.../uvloop/loop.cpython-311-x86_64-linux-gnu.so``."""
    paths = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[5:]
            if path and path[0].startswith("/"):
                paths.add(path[0].strip())
    return paths


def keepalive_nodelay(pid: int, port: int, namespace: str, requests: int = 3) -> int:
    """``TCP_NODELAY`` of server ``pid``'s end of a keep-alive connection to ``port`` that
    carried ``requests`` PUTs and GETs of keys in ``namespace``, each answered 200 with what
    was stored."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(requests):
            path = f"/v1/namespaces/{namespace}/keys/k{i}"
            conn.request("PUT", path, b'{"value": %d}' % i, {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200 and b'"value":%d' % i in body.replace(b" ", b""), body
        assert conn.sock is not None
        address = conn.sock.getsockname()
        return server_socket_option(pid, address, socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        conn.close()
