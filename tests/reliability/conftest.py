"""Fixtures of the reliability suite."""

from __future__ import annotations

import pytest
from support.postgres import PostgresUnavailable, new_database


@pytest.fixture
def pg_dsn() -> str:
    """A fresh database on the session's throwaway PostgreSQL cluster (fails, never skips)."""
    try:
        return new_database("botwire_reliability")
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``slow`` (long) variants of this directory run only when asked for: ``-m slow`` (or
    any ``-m`` expression naming it) or ``BOTWIRE_RELIABILITY_SLOW=1``; the normal run keeps the
    CI-sized ones."""
    import os

    if (
        "slow" in (config.getoption("markexpr") or "")
        or os.environ.get("BOTWIRE_RELIABILITY_SLOW") == "1"
    ):
        return
    here = os.path.dirname(__file__)
    keep, drop = [], []
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        (drop if slow and str(item.path).startswith(here) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
