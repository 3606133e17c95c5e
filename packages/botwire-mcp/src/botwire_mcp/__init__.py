"""botwire-mcp: an MCP server whose memory is botwire (persistent, shared, with TTL).

    botwire-mcp                                   # stdio (Claude Desktop, Cursor)
    botwire-mcp --transport http --port 8766      # stateless streamable HTTP
    botwire-mcp import memory.jsonl               # migrate a server-memory graph

Key-value tools (``memory_get``, ``memory_set``, ...), the nine tools of the reference
``@modelcontextprotocol/server-memory`` knowledge graph, and ``memory://{namespace}/{key}``
resources, over ``botwire.AsyncMemory`` (embedded store or a botwire-server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._graph import KnowledgeGraph
    from ._importer import ImportReport, import_jsonl, read_jsonl
    from ._server import ServerConfig, build_server, resource_uri

__all__ = [
    "ImportReport",
    "KnowledgeGraph",
    "ServerConfig",
    "build_server",
    "import_jsonl",
    "read_jsonl",
    "resource_uri",
]
__version__ = "0.3.0"

# Lazy: the graph and the importer need no mcp SDK, and ``botwire-mcp import`` or a refused
# start should not pay for importing it (seconds on a cold start).
_WHERE = {
    "KnowledgeGraph": "._graph",
    "ImportReport": "._importer",
    "import_jsonl": "._importer",
    "read_jsonl": "._importer",
    "ServerConfig": "._server",
    "build_server": "._server",
    "resource_uri": "._server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'botwire_mcp' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
