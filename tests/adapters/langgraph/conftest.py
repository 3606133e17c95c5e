"""Fixtures for the LangGraph adapter tests: shared with every adapter suite (support/adapters.py).

Each test runs on an embedded SQLite file and on a real server, in a botwire namespace of its
own, so tests stay independent when they share one server.
"""

from support.adapters import memory, memory_url, namespace

__all__ = ["memory", "memory_url", "namespace"]
