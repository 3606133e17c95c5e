"""A clock a test can move forward: ``time.time()`` plus an offset.

One definition for every place that moves time without sleeping: the server's
``--testing-clock`` (``POST /_testing/clock``) and the embedded conformance backends of the
tests (``tests/support/backends.py``). Stores take any ``clock`` callable; this one is what they
are given when TTLs and daily quotas must be seen to pass.
"""

from __future__ import annotations

import time

__all__ = ["TestingClock"]


class TestingClock:
    """``time.time()`` plus an offset that only moves forward.

    Example::

        clock = TestingClock()
        store = SQLiteStore("bw.db", clock=clock)
        clock.advance(3600)       # every TTL and daily quota now sees one hour later
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        """Move forward ``seconds`` (never back: stored expiries would jump); the new time."""
        if not seconds >= 0:
            raise ValueError(
                f"the testing clock only moves forward, not by {seconds!r} seconds; "
                "start a new clock to go back"
            )
        self.offset += seconds
        return self()
