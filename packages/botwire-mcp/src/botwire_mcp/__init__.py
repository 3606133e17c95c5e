"""botwire-mcp: an MCP server whose memory is botwire (persistent, shared, with TTL).

    botwire-mcp                                   # stdio (Claude Desktop, Cursor)
    botwire-mcp --transport http --port 8766      # stateless streamable HTTP

Key-value tools (``memory_get``, ``memory_set``, ...), the nine tools of the reference
``@modelcontextprotocol/server-memory`` knowledge graph, and ``memory://{namespace}/{key}``
resources, over ``botwire.AsyncMemory`` (embedded store or a botwire-server).
"""

from __future__ import annotations

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
