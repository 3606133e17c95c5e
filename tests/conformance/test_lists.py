"""Lists: atomic append, tail, pop, max_len, and interplay with set().

The cases live in ``botwire.testing`` (``ListCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import ListCases


class TestLists(OnEveryBackend, ListCases):
    pass
