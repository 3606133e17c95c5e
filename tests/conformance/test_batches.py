"""get_many / set_many / delete_many and atomic(): one round trip, all or nothing.

The cases live in ``botwire.testing`` (``BatchCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import BatchCases


class TestBatches(OnEveryBackend, BatchCases):
    pass
