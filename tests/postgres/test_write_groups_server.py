"""Group commit of one namespace's writes on a real ``botwire-server`` over PostgreSQL (issue 22,
``_pg_group``), as users deploy it:

- ``kill -9`` of the server while 24 writers write to ONE namespace, several times: every
  acknowledged write is read back from a fresh server (an answer before the shared COMMIT would
  lose some); ``/metrics`` shows the writes were grouped;
- the same with 24 writers over 8 namespaces, whose groups share transactions;
- requests failing inside the groups (a stale ``If-Match``, a type mismatch) fail alone: the
  writes grouped with them are stored, versions unique and growing per writer.
"""

from __future__ import annotations

import pytest
from reliability.helpers import RestartableServer
from support.group_writers import failing_requests_fail_alone, kill9_rounds
from support.postgres import PostgresServer
from support.server import running_server

pytestmark = pytest.mark.postgres

WRITERS = 24


@pytest.mark.parametrize(
    "kills", [pytest.param(3, id="ci"), pytest.param(10, id="long", marks=pytest.mark.slow)]
)
def test_kill9_under_grouped_writes_loses_no_acknowledged_write(kills: int, ns: str) -> None:
    # durable: synchronous_commit on, so an acknowledged COMMIT survives the server's kill
    pg = PostgresServer.start_private(durable=True)
    try:
        with RestartableServer(pg.new_database("groups")) as server:
            acked, per_commit = kill9_rounds(server, ns, kills, WRITERS)
    finally:
        pg.stop()
    print(
        f"FIGURE PostgreSQL group commit kill -9 x{kills}: {acked:.0f} acknowledged writes all "
        f"present; up to {per_commit:.1f} writes per grouped COMMIT"
    )
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"


def test_kill9_under_writes_to_eight_namespaces_loses_no_acknowledged_write(ns: str) -> None:
    """24 writers over 8 namespaces: the namespaces whose transactions end together share the
    next (``_pg_plans.multi_plan``); ``kill -9`` mid-storm, three times, loses no acknowledged
    write, and ``/metrics`` shows shared transactions ran."""
    pg = PostgresServer.start_private(durable=True)
    spaces = [f"{ns}-{i}" for i in range(8)]
    shared: list[float] = []
    try:
        with RestartableServer(pg.new_database("several")) as server:
            acked, _ = kill9_rounds(server, spaces, 3, WRITERS, shared=shared)
    finally:
        pg.stop()
    print(
        f"FIGURE PostgreSQL, 8 namespaces, kill -9 x3: {acked:.0f} acknowledged writes all "
        f"present; up to {max(shared):.1f} namespaces per shared transaction"
    )
    assert max(shared) >= 2, f"no transaction ran several namespaces ({shared})"


def test_failing_requests_in_a_group_fail_alone(postgres_url: str, ns: str) -> None:
    with running_server(database=postgres_url) as srv:
        per_commit = failing_requests_fail_alone(srv.url, srv.port, ns, WRITERS)
    print(f"FIGURE PostgreSQL group commit: {per_commit:.1f} writes per grouped COMMIT")
    assert per_commit > 1.5, f"writes were not grouped ({per_commit:.2f} per COMMIT)"
