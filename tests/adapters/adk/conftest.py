"""Fixtures for the Google ADK adapter tests: shared with every adapter suite (support/adapters.py).

Each test runs on an embedded SQLite file and on a real botwire server, in a namespace of its own.
"""

from support.adapters import memory, memory_url, namespace, run_script

__all__ = ["memory", "memory_url", "namespace", "run_script"]
