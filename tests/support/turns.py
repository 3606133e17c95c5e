"""A loopback TCP relay that counts round trips (*turns*) between a PostgreSQL client and its
server: each time bytes go from client to server after the server last spoke (or at the start)
is one. That is exactly what latency costs, whatever the client does internally.

Example::

    with relayed(postgres_url) as (url, relay):
        store = PostgresStore(url)          # or a botwire-server given ``url``
        ...
        assert relay.take() == 1            # the turns since the last take
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["TurnCountingRelay", "relayed"]


class TurnCountingRelay:
    """A loopback TCP relay to ``host:port`` that counts client-to-server turns."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.turns = 0
        self.last_activity = time.monotonic()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):  # no Nagle delays: they would only cost time
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            t.start()
            self._threads.append(t)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        # The server's replies are held until the client has been quiet for HOLD seconds, so
        # that everything a pipelining client sends without waiting reaches the server before
        # the client sees any reply: only sends made after a reply was delivered count as a
        # turn, however slowly a loaded machine schedules the client.
        hold = 0.02
        last = "server"
        pending = b""
        last_client = time.monotonic()
        with client, server:
            # poll(), not select(): a long test session holds descriptors above select's 1024
            poller = select.poll()
            by_fd = {client.fileno(): client, server.fileno(): server}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            while not self._stop:
                ready = [by_fd[fd] for fd, _ in poller.poll(5)]
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        if pending:
                            client.sendall(pending)
                        return
                    self.last_activity = time.monotonic()
                    if sock is client:
                        if last == "server":
                            with self._lock:
                                self.turns += 1
                        last = "client"
                        last_client = time.monotonic()
                        server.sendall(data)
                    else:
                        pending += data
                if pending and time.monotonic() - last_client >= hold:
                    client.sendall(pending)
                    pending = b""
                    last = "server"

    def take(self) -> int:
        """The turns since the last call, once the relay has been quiet for 100 ms: traffic an
        operation causes after it returned (a pool resetting its connection in the background)
        is charged to that operation, not to the next one."""
        deadline = time.monotonic() + 5
        while time.monotonic() - self.last_activity < 0.1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            n, self.turns = self.turns, 0
        return n

    def close(self) -> None:
        self._stop = True
        self._listener.close()
        for t in self._threads:
            t.join(timeout=5)


@contextlib.contextmanager
def relayed(url: str) -> Iterator[tuple[str, TurnCountingRelay]]:
    params = conninfo_to_dict(url)
    relay = TurnCountingRelay(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    try:
        yield make_conninfo(**{**params, "host": "127.0.0.1", "port": relay.port}), relay
    finally:
        relay.close()
