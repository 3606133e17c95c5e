"""One face over the two generations of the official ``mcp`` SDK.

``mcp`` 1.x ships ``mcp.server.fastmcp.FastMCP`` (settings in the constructor); 2.x renamed it
``mcp.server.mcpserver.MCPServer`` (settings passed to ``run`` / ``streamable_http_app``).
Frameworks pin either side (crewai ``mcp<2``, strands-agents ``mcp<2.2``), so botwire-mcp
supports both rather than forcing one.
"""

from __future__ import annotations

from typing import Any

try:  # mcp >= 2
    from mcp.server.mcpserver import Context, MCPServer  # type: ignore[import-not-found]
    from mcp.server.mcpserver.exceptions import (  # type: ignore[import-not-found]
        ResourceError,
        ToolError,
    )

    MCP2 = True
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as MCPServer  # type: ignore[no-redef,assignment]
    from mcp.server.fastmcp.exceptions import (  # type: ignore[no-redef,assignment]
        ResourceError,
        ToolError,
    )

    MCP2 = False

# ToolError/ResourceError: failures the client should read. mcp 2.x shows the model only
# "Error executing tool <name>" for any other exception, which would hide botwire's messages.
__all__ = ["MCP2", "Context", "MCPServer", "ResourceError", "ToolError", "http_app", "new_server"]


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
        return server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=True,
            json_response=True,
            transport_security=security,
        )
    server.settings.streamable_http_path = path
    server.settings.transport_security = security
    return server.streamable_http_app()
