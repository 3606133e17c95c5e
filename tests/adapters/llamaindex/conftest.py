"""Fixtures for the LlamaIndex adapter tests: shared with every adapter suite (support/adapters.py).

Each test runs on an embedded SQLite file and on a real server, in a namespace of its own;
``run_script`` runs one of this directory's scripts as a fresh process on the same backend.
"""

from support.adapters import memory, memory_url, namespace, run_script

__all__ = ["memory", "memory_url", "namespace", "run_script"]
