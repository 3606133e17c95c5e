"""One face over the two generations of the official ``mcp`` SDK.

``mcp`` 1.x ships ``mcp.server.fastmcp.FastMCP`` (settings in the constructor); 2.x renamed it
``mcp.server.mcpserver.MCPServer`` (settings passed to ``run`` / ``streamable_http_app``).
Frameworks pin either side (crewai ``mcp<2``, strands-agents ``mcp<2.2``), so botwire-mcp
supports both rather than forcing one.
"""

from __future__ import annotations

from typing import Any

from ._auth import jsonrpc_refusal

# Only one generation is installed at a time, so which of these ignores mypy needs depends on
# it (the other side's module is missing, or the names are defined twice): each ignore lists the
# codes of both cases plus unused-ignore, so the check is clean whichever mcp is installed.
try:  # mcp >= 2
    from mcp.server.mcpserver import (  # type: ignore[import-not-found,unused-ignore]
        Context,
        MCPServer,
    )
    from mcp.server.mcpserver.exceptions import (  # type: ignore[import-not-found,unused-ignore]
        ResourceError,
        ToolError,
    )

    MCP2 = True
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        Context,
    )
    from mcp.server.fastmcp import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        FastMCP as MCPServer,
    )
    from mcp.server.fastmcp.exceptions import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        ResourceError,
        ToolError,
    )

    MCP2 = False

# ToolError/ResourceError: failures the client should read. mcp 2.x shows the model only
# "Error executing tool <name>" for any other exception, which would hide botwire's messages.
__all__ = [
    "MCP2",
    "Context",
    "MCPServer",
    "NoServerStream",
    "ResourceError",
    "ToolError",
    "http_app",
    "new_server",
]


def new_server(name: str, instructions: str) -> Any:
    """A server object; HTTP settings are given later to :func:`http_app`."""
    if MCP2:
        return MCPServer(name, instructions=instructions)
    # FastMCP 1.x reads stateless/json settings from its constructor; 0.0.0.0 here only keeps
    # it from installing its localhost-only Host check: ``http_app`` decides on binding.
    return MCPServer(
        name,
        instructions=instructions,
        stateless_http=True,
        json_response=True,
        host="0.0.0.0",
    )


def http_app(server: Any, path: str, *, loopback: bool) -> Any:
    """The stateless streamable-HTTP ASGI app (no session ids: any replica answers any call).

    On a loopback bind the SDK's Host/Origin check stays on: a web page in the user's browser
    must not reach an anonymous local server (DNS rebinding).
    """
    from mcp.server.transport_security import TransportSecuritySettings

    security = (
        TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        if loopback
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    if MCP2:
        app = server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=True,
            json_response=True,
            transport_security=security,
        )
    else:
        server.settings.streamable_http_path = path
        server.settings.transport_security = security
        app = server.streamable_http_app()
    return NoServerStream(app, path)


class NoServerStream:
    """ASGI middleware: ``GET`` on the MCP endpoint is answered ``405 Method Not Allowed``.

    A stateless server has no server-initiated messages to stream, and the SDK would hold a
    GET's empty event stream open forever (a connection and a task per client). The MCP spec
    lets a server without such a stream answer 405; clients then stop asking.
    """

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path.rstrip("/") or "/"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or (scope["path"].rstrip("/") or "/") != self.path
        ):
            await self.app(scope, receive, send)
            return
        message = (
            "botwire-mcp: this stateless server offers no server-initiated stream, so GET is "
            "not allowed; send MCP requests with POST."
        )
        await jsonrpc_refusal(send, 405, -32600, message, [(b"allow", b"POST")])
