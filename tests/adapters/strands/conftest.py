"""Fixtures for the Strands adapter tests: shared with every adapter suite (support/adapters.py).

Each test runs on an embedded SQLite file and on a real server, in a botwire namespace of its
own; ``scripted.py`` (the scripted model) is importable by name from the tests.
"""

from support.adapters import importable_here, memory, memory_url, namespace, run_script

importable_here(__file__)

__all__ = ["memory", "memory_url", "namespace", "run_script"]
