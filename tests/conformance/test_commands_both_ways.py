"""Each command answers alike as a plain call on ``Memory`` and as a coroutine on ``AsyncMemory``.

The cases live in ``botwire.testing`` (``BothWaysCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import BothWaysCases


class TestCommandsBothWays(OnEveryBackend, BothWaysCases):
    pass
