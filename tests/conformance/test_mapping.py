"""Memory is a MutableMapping; ``in`` tests existence, not truthiness; keys in byte order.

The cases live in ``botwire.testing`` (``MappingCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import MappingCases


class TestMapping(OnEveryBackend, MappingCases):
    pass
