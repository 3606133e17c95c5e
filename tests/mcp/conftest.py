"""botwire-mcp tests: real MCP sessions (stdio, streamable HTTP) on real botwire backends.

``memory_url`` (a fresh embedded SQLite file, or the session's real botwire-server) and
``namespace`` come from the shared adapter harness (support/adapters.py).
"""

from __future__ import annotations

from support.adapters import importable_here, memory_url, namespace

__all__ = ["memory_url", "namespace"]

HERE = importable_here(__file__)  # mcp_helpers, scripted model for the Agents SDK
