"""Versions: monotonic across the store, no reuse after delete + recreate, compare-and-set.

The cases live in ``botwire.testing`` (``VersionCases``),
the kit a third party runs against a store of its own;
here they run against our three backends (tests/conftest.py).
"""

from __future__ import annotations

from support.backends import OnEveryBackend

from botwire.testing import VersionCases


class TestVersions(OnEveryBackend, VersionCases):
    pass
