"""Namespace rules and isolation.

The cases live in ``botwire.testing`` (``NamespaceCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import NamespaceCases


class TestNamespaces(OnEveryBackend, NamespaceCases):
    pass
