"""``uv run pytest`` on a machine without a system PostgreSQL: the test support falls back to the
PostgreSQL build inside the ``pgserver`` wheel (a dev dependency), and a real botwire-server works
on it. ``BOTWIRE_TEST_POSTGRES=pypi`` forces that fallback here, whatever the machine has."""

from __future__ import annotations

import os
import uuid

import pytest
from support.postgres import ENV_SOURCE, PostgresServer, PostgresUnavailable, find_postgres_bin
from support.server import running_server

from botwire import Memory

pytestmark = pytest.mark.postgres


def test_pypi_binaries_are_chosen_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SOURCE, "pypi")
    bindir = find_postgres_bin()
    assert os.sep + os.path.join("pgserver", "pginstall", "bin") in bindir
    assert os.access(os.path.join(bindir, "initdb"), os.X_OK)


def test_unknown_choice_names_the_variable_and_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_SOURCE, "apt")
    with pytest.raises(PostgresUnavailable, match=r"BOTWIRE_TEST_POSTGRES='apt'.*'pypi'"):
        find_postgres_bin()


def test_fallback_without_system_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with nothing on PATH and no /usr/lib/postgresql: the wheel's binaries."""
    import support.postgres as pg

    monkeypatch.delenv(ENV_SOURCE, raising=False)
    monkeypatch.setattr(pg, "_system_postgres_bin", lambda: None)
    assert "pgserver" in pg.find_postgres_bin()


def test_server_on_a_cluster_of_pypi_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SOURCE, "pypi")
    pg = PostgresServer.start_private()
    try:
        assert pg._bin is not None and "pginstall" in pg._bin
        url = pg.new_database("botwire_pypi")
        with running_server(database=url) as server:
            assert "PostgreSQL" in server.log() or "postgresql://" in server.log()
            ns = f"pypi-{uuid.uuid4().hex[:8]}"
            with Memory(ns, url=server.url) as memory:
                v1 = memory.set("profile", {"name": "Ada", "langs": ["en", "fr"]})
                assert memory.get("profile") == {"name": "Ada", "langs": ["en", "fr"]}
                memory.append("log", "a")
                memory.append("log", "b")
                assert memory.get("log") == ["a", "b"]
                assert memory.incr("n", 5) == 5
                assert memory.set("profile", 2, if_version=v1) > v1
                assert sorted(memory.keys()) == ["log", "n", "profile"]
    finally:
        pg.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_binaries_the_cluster_user_cannot_reach_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root the cluster runs as 'postgres'/'nobody', who cannot run binaries inside a
    root-only home (a venv in /root): a private copy of the build is used instead."""
    import support.postgres as pg

    monkeypatch.setenv(ENV_SOURCE, "pypi")
    monkeypatch.setattr(pg, "_traversable", lambda path: False)
    server = PostgresServer.start_private()
    try:
        assert server._dir is not None
        assert server._bin == os.path.join(server._dir, "pg", "pgserver", "pginstall", "bin")
        server.new_database("botwire_pypi_copy")
    finally:
        server.stop()
