"""The one retry policy every PostgreSQL path uses (``_pg_common.Retry``): the sync store's
transactions and the event loop's reads and writes all go through it, so its rules are pinned
here once, with psycopg's own exception classes (the paths themselves are tested against a real
server: killed connections, pool timeouts, full disks, serialization races)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from botwire._errors import StorageFull, Unavailable
from botwire_server.storage._pg_common import LOST_RETRIES, Retry

WHERE = "PostgreSQL at db:5432/app"


def test_a_race_is_retried_with_backoff_then_named() -> None:
    retry = Retry(WHERE, retries=3)
    race = pg_errors.SerializationFailure("could not serialize access")
    for _ in range(3):
        step = retry.next(race)
        assert step is not None
        delay, check = step
        assert 0 <= delay <= 0.008 and check is False
    with pytest.raises(Unavailable, match=r"kept aborting the transaction .* after 3 retries"):
        retry.next(pg_errors.DeadlockDetected("deadlock detected"))


def test_a_lost_connection_is_retried_on_fresh_ones_unless_the_commit_went() -> None:
    retry = Retry(WHERE, retries=5)
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    for _ in range(LOST_RETRIES):
        assert retry.next(lost) == (0.0, True)  # test the idle connections, then try again
    with pytest.raises(Unavailable, match=r"failed: server closed .* Try again later"):
        retry.next(lost)
    with pytest.raises(Unavailable, match="may or may not have been applied"):
        Retry(WHERE, retries=5).next(lost, sent=True)


@pytest.mark.parametrize("exc", [PoolTimeout("couldn't get a connection"), PoolClosed("closed")])
def test_no_connection_from_the_pool_is_answered_at_once(exc: Exception) -> None:
    with pytest.raises(Unavailable, match=rf"no connection to {WHERE}.*raise the pool"):
        Retry(WHERE, retries=5).next(exc)


def test_a_full_disk_is_storage_full_never_a_lost_connection() -> None:
    with pytest.raises(StorageFull, match=r"no disk space left.*writes resume by themselves"):
        Retry(WHERE, retries=5).next(pg_errors.DiskFull("could not extend file"))


def test_other_errors_are_the_callers_own() -> None:
    assert Retry(WHERE, retries=5).next(ValueError("a bug")) is None
    assert Retry(WHERE, retries=5).next(pg_errors.UniqueViolation("dup")) is None
