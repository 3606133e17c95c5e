"""TTL: expired entries vanish at once (moved clock, no sleeps) and free their quota.

The cases live in ``botwire.testing`` (``TTLCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import TTLCases


class TestTTL(OnEveryBackend, TTLCases):
    pass
