"""Limits and quotas are exact at the boundary and never lose what is stored.

The cases live in ``botwire.testing`` (``LimitCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import LimitCases


class TestLimits(OnEveryBackend, LimitCases):
    pass
