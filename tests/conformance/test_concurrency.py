"""Concurrent writers through one backend lose nothing.

The cases live in ``botwire.testing`` (``ConcurrencyCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import ConcurrencyCases


class TestConcurrency(OnEveryBackend, ConcurrencyCases):
    pass
