"""incr: atomic adds on numbers.

The cases live in ``botwire.testing`` (``CounterCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import CounterCases


class TestCounters(OnEveryBackend, CounterCases):
    pass
