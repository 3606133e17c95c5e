"""Values round-trip with exactly the type stored; non-JSON is refused before any I/O.

The cases live in ``botwire.testing`` (``ValueCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import ValueCases


class TestValues(OnEveryBackend, ValueCases):
    pass
