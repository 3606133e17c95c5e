"""A role with rights on botwire's tables and nothing more serves a current schema.

The usual least-privilege set-up: one role owns and migrates the schema, the application's role
may read and write the tables and use their sequences, and may not create anything in the
schema (PostgreSQL 15+ no longer lets every role create in ``public``). Such a role could not
open the store at all: ``CREATE TABLE IF NOT EXISTS bw_meta`` needs CREATE on the schema even
when the table exists. Through a real server too, as ``botwire-server --database``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from support.server import running_server

from botwire.store import Op
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role_url(fresh_postgres_url: str) -> Iterator[str]:
    """The schema created by the database's owner; a login role with table rights only."""
    PostgresStore(fresh_postgres_url).close()
    role = f"bw_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
        database = admin.info.dbname
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL 15's default
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        yield psycopg.conninfo.make_conninfo(fresh_postgres_url, user=role)
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_a_role_without_create_opens_a_current_schema(app_role_url: str) -> None:
    with psycopg.connect(app_role_url) as conn:  # the set-up is what it claims to be
        row = conn.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone()
        assert row is not None and row[0] is False
    store = PostgresStore(app_role_url)
    try:
        store.batch("ns", [Op("set", "k", value='"v"')], atomic=True)
        entry = store.get("ns", "k")
        assert entry is not None and entry.value == "v"
        assert store.clear("ns", idempotency_key="c1") == 1
    finally:
        store.close()


def test_a_server_runs_as_a_role_without_create(app_role_url: str) -> None:
    with running_server(database=app_role_url) as server:
        url = f"{server.url}/v1/namespaces/ns/keys/k"
        assert httpx.put(url, json={"value": 1}).status_code == 200
        assert httpx.get(url).json()["value"] == 1
