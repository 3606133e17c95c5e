"""Real MCP client sessions against botwire-mcp: stdio child processes, HTTP server processes.

Every server is a fresh ``python -m botwire_mcp`` process (as ``uvx botwire-mcp`` would start
it); clients are the ``mcp`` SDK's own stdio and streamable-HTTP clients.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from support.server import ServerProcess, free_port

__all__ = [
    "call",
    "http_session",
    "mcp_env",
    "running_mcp_http",
    "start_mcp_http",
    "stdio_session",
    "structured",
]


def mcp_env(memory_url: str, namespace: str, **extra: str) -> dict[str, str]:
    """The environment of a botwire-mcp process on ``memory_url`` serving ``namespace``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    env.update(BOTWIRE_URL=memory_url, BOTWIRE_MCP_NAMESPACE=namespace, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def stdio_session(env: dict[str, str], *args: str) -> AsyncIterator[ClientSession]:
    """A fresh botwire-mcp stdio process and an initialized client session on it."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "botwire_mcp", *args], env=env
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def http_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialized streamable-HTTP client session, with a bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def start_mcp_http(env: dict[str, str], *args: str, timeout: float = 30) -> ServerProcess:
    """``botwire-mcp --transport http`` on a free loopback port, once it accepts connections."""
    log_dir = Path(tempfile.mkdtemp(prefix="botwire-mcp-log-"))
    port = free_port()
    log_path = log_dir / f"mcp-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "botwire_mcp",
        "--transport",
        "http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = ServerProcess(proc, "127.0.0.1", port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"botwire-mcp exited {proc.returncode}:\n{server.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return server
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"botwire-mcp did not start:\n{server.log()}")


@contextlib.contextmanager
def running_mcp_http(env: dict[str, str], *args: str) -> Iterator[tuple[str, ServerProcess]]:
    """(endpoint URL, process) of a botwire-mcp HTTP server, always stopped afterwards."""
    server = start_mcp_http(env, *args)
    try:
        yield f"http://127.0.0.1:{server.port}/mcp", server
    finally:
        server.stop()


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """Call ``tool``; return its result (asserting it is not an error)."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, f"{tool} failed: {result.content}"
    return result


def structured(result: Any) -> Any:
    """A tool result's structured content, checked against its text content."""
    assert result.structuredContent is not None
    text = result.content[0].text
    if text.startswith(("{", "[")):
        json.loads(text)  # the text form is JSON too
    return result.structuredContent
