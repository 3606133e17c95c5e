"""A byte-level loopback TCP relay: counts what crosses it, black-holes idle flows, goes down.

Where :mod:`support.faultproxy` understands HTTP messages, this relay only moves bytes, so it
can sit in front of anything (a botwire server, nginx, tinyproxy) without changing what the
client sees:

- ``bytes_up`` / ``bytes_down`` / ``connections``: bytes client->server, server->client, and
  TCP connections accepted (how many uploads happened; how many connections a client opened);
- ``idle_drop=seconds``: a flow idle longer than that is dropped *silently*, as a NAT gateway
  or a load balancer does (AWS NAT: 350 s): what the client sends afterwards is swallowed,
  nothing is answered, nothing is closed; ``blackholed`` counts such flows;
- ``down(seconds)``: for that long the relay is gone: every open flow is reset and new
  connections are refused (the listening socket is closed, then bound again on the same port),
  like a load balancer during a deploy or a 2-second outage.

Example::

    with running_server() as server, Relay(server.port, idle_drop=1.0) as relay:
        m = Memory("ns", url=relay.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

from support.loopserver import LoopServer

__all__ = ["Relay"]


class Relay(LoopServer):
    thread_name = "relay"

    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        idle_drop: float | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.idle_drop = idle_drop
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.blackholed = 0
        super().__init__()
        self._flows: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: dict[str, float | bool],
        up: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                now = time.monotonic()
                if (
                    up
                    and self.idle_drop is not None
                    and not state["dead"]
                    and now - float(state["last"]) > self.idle_drop
                ):
                    state["dead"] = True
                    self.blackholed += 1
                if state["dead"]:
                    continue  # swallowed: the flow no longer exists on the path
                state["last"] = now
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not state["dead"]:
                with contextlib.suppress(Exception):
                    writer.close()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            ureader, uwriter = await asyncio.open_connection(*self.upstream)
        except OSError:
            cwriter.close()
            return
        self._flows.update((cwriter, uwriter))
        state: dict[str, float | bool] = {"last": time.monotonic(), "dead": False}
        try:
            await asyncio.gather(
                self._pump(creader, uwriter, state, True),
                self._pump(ureader, cwriter, state, False),
            )
            if state["dead"]:  # a black hole keeps the flow open and silent until shutdown
                await asyncio.sleep(3600)
        finally:
            self._flows.difference_update((cwriter, uwriter))
            cwriter.close()
            uwriter.close()

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._server = await asyncio.start_server(self._handle, sock=sock)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _down(self, seconds: float) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._flows):  # reset every open flow
            with contextlib.suppress(Exception):
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
        await asyncio.sleep(seconds)
        await self._listen()

    def down(self, seconds: float) -> None:
        """Be gone for ``seconds`` from now (returns at once)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._down(seconds), self._loop)

    def _closing(self) -> None:
        super()._closing()
        for writer in list(self._flows):
            writer.close()
