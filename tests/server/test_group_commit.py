"""Group commit on a real ``botwire-server`` over SQLite (issue 22): concurrent writes share one
transaction and one ``COMMIT``, each request answered only after it.

- ``kill -9`` of the server while many writers run, several times: every acknowledged write is
  read back after the restart (an answer before the shared COMMIT would lose some), and the
  file passes ``PRAGMA integrity_check``;
- requests failing inside a group (a stale ``If-Match``, a type mismatch) fail alone: the
  writes grouped with them are stored, with versions unique and increasing per writer;
- both ways of calling the store (``--store-calls inline`` and ``thread``) group writes, which
  ``/metrics`` shows (``botwire_grouped_writes / botwire_write_groups`` > 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.helpers import RestartableServer
from support.group_writers import failing_requests_fail_alone, kill9_rounds
from support.server import running_server

from botwire.store import SQLiteStore

WRITERS = 24


@pytest.mark.parametrize(
    "kills", [pytest.param(4, id="ci"), pytest.param(12, id="long", marks=pytest.mark.slow)]
)
def test_kill9_under_grouped_writes_loses_no_acknowledged_write(
    kills: int, tmp_path: Path, ns: str
) -> None:
    db = tmp_path / "group.db"

    def intact() -> None:
        store = SQLiteStore(str(db))
        try:
            assert store.integrity_check() == "ok"
        finally:
            store.close()

    with RestartableServer(str(db)) as server:
        acked, per_commit = kill9_rounds(server, ns, kills, WRITERS, after_kill=intact)
    print(
        f"FIGURE group-commit kill -9 x{kills}: {acked:.0f} acknowledged writes all present; "
        f"up to {per_commit:.1f} writes per COMMIT"
    )
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"


@pytest.mark.parametrize("calls", ["inline", "thread"])
def test_failing_requests_in_a_group_fail_alone(calls: str, tmp_path: Path, ns: str) -> None:
    with running_server("--store-calls", calls, database=tmp_path / "f.db") as srv:
        per_commit = failing_requests_fail_alone(srv.url, srv.port, ns, WRITERS)
    print(f"FIGURE group-commit {calls}: {per_commit:.1f} writes per COMMIT")
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"
