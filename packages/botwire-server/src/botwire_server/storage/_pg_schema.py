"""The PostgreSQL store's schema: the migrations from one schema number to the next, run at start
inside a transaction holding ``pg_advisory_xact_lock`` (replicas starting together migrate once),
and what is dropped outside the numbering (an index an older replica still starts without)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg.errors

from botwire._errors import InvalidArgument
from botwire.store._sql import PG_OCTETS, recount_sql
from botwire.store._sqltext import (
    POLICY_INDEXES,
    RECENT_INDEX_DROP,
    RECORDS_AGE_INDEX,
    list_hash,
    policy_migration,
    records_migration,
)
from botwire.store._sqlwatch import WATCH_SCHEMA

__all__ = [
    "ITEMS_SCHEMA",
    "POLICY_INDEX_SCHEMA",
    "POLICY_SCHEMA",
    "RECORDS_SCHEMA",
    "SCHEMA_VERSION",
    "migrate",
]

log = logging.getLogger("botwire_server")

#: The schema number of the change feed's migration (issue 18, watch): renumber here only.
WATCH_MIGRATION = 5
_MIGRATION_LOCK = 0x6277_6D69  # pg_advisory_xact_lock key for schema changes ("bwmi")
_TEXT = 'TEXT COLLATE "C" NOT NULL'
# _MIGRATIONS[n] takes a database from schema n - 1 to schema n.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE SEQUENCE IF NOT EXISTS bw_version AS bigint",
        f"CREATE TABLE IF NOT EXISTS bw_entries (ns {_TEXT}, key {_TEXT},"
        " kind smallint NOT NULL, value text, version bigint NOT NULL,"
        " created_at double precision NOT NULL, updated_at double precision NOT NULL,"
        " expires_at double precision, bytes bigint NOT NULL,"
        " length bigint NOT NULL DEFAULT 0, head bigint NOT NULL DEFAULT 0,"
        " tail bigint NOT NULL DEFAULT 0, PRIMARY KEY (ns, key))",
        "CREATE INDEX IF NOT EXISTS bw_entries_expiry ON bw_entries (expires_at)"
        " WHERE expires_at IS NOT NULL",
        # keyed by schema 7's indexes; databases created before it keep PRIMARY KEY (ns, key,
        # seq) until their operator drops it (``_ITEMS_PKEY_NOTE``)
        f"CREATE TABLE IF NOT EXISTS bw_items (ns {_TEXT}, key {_TEXT}, seq bigint NOT NULL,"
        " value text NOT NULL, bytes bigint NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS bw_namespaces (ns {_TEXT} PRIMARY KEY,"
        " keys bigint NOT NULL, bytes bigint NOT NULL, day bigint NOT NULL,"
        " writes bigint NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS bw_idempotency (ns {_TEXT}, ikey {_TEXT}, fingerprint text,"
        " created_at double precision NOT NULL, response text NOT NULL,"
        " PRIMARY KEY (ns, ikey))",
        "CREATE INDEX IF NOT EXISTS bw_idempotency_age ON bw_idempotency (created_at)",
    ),
    # issue 13 created bw_entries_recent here for the compatibility listing; issue 22 reads
    # the change feed's bw_entries_version instead and drops it (``_drop_recent_index``)
    2: (),
    # issue 13: idempotency records count in their namespace's bytes, in UTF-8 bytes; records
    # kept before (uncounted, or counted in characters) are counted once here
    3: (recount_sql(PG_OCTETS),),
    # issue 18: the change feed (tombstones, pruned horizons, entries by version)
    WATCH_MIGRATION: tuple(
        s.format(text=_TEXT, bigint="bigint", real="double precision", without_rowid="")
        for s in WATCH_SCHEMA
    ),
}
#: Schema 4 (issue 18): the retention policy's columns; schema 5 (issue 18): the change feed.
POLICY_SCHEMA = 4
_MIGRATIONS[POLICY_SCHEMA] = (
    *policy_migration("double precision", "bigint", if_not_exists="IF NOT EXISTS "),
    "UPDATE bw_namespaces SET written_at = extract(epoch from now())::float8"
    " WHERE written_at IS NULL",
)
#: Schema 6 (issue 22): ``bw_namespaces.records``, the idempotency records a namespace keeps
#: (NULL until the next keyed write counts them).
RECORDS_SCHEMA = 6
_MIGRATIONS[RECORDS_SCHEMA] = (
    records_migration("bigint", if_not_exists="IF NOT EXISTS "),
    RECORDS_AGE_INDEX,
)
#: Schema 7 (issue 22): a list's items found by a hash of the list's name and ``seq``
#: (``list_hash``: 28-byte index entries where ``(ns, key, seq)``'s took 84 or more), and the
#: namespace's items by ``ns`` alone (``clear``; deduplicated, a few bytes per item). Both are
#: built in the migration's transaction: list writes wait for them on a large database.
ITEMS_SCHEMA = 7
_MIGRATIONS[ITEMS_SCHEMA] = (
    f"CREATE INDEX IF NOT EXISTS bw_items_list ON bw_items ({list_hash('ns', 'key')}, seq)",
    "CREATE INDEX IF NOT EXISTS bw_items_ns ON bw_items (ns)",
)
#: Schema 8 (issue 22): the namespaces with a retention policy of their own, indexed
#: (``POLICY_INDEXES``): housekeeping no longer reads every namespace's row to find them.
POLICY_INDEX_SCHEMA = 8
_MIGRATIONS[POLICY_INDEX_SCHEMA] = POLICY_INDEXES
SCHEMA_VERSION = max(_MIGRATIONS)
_ITEMS_PKEY_NOTE = (
    "botwire: bw_items still has the primary key (ns, key, seq) of schemas before 7; this "
    "release finds list items by bw_items_list and does not use it. Once no replica of an "
    "earlier release serves this database (their reads use it), drop it: ALTER TABLE bw_items "
    "DROP CONSTRAINT bw_items_pkey (it holds about a third of a list's bytes; docs/server.md)"
)
_META = (
    "CREATE TABLE IF NOT EXISTS bw_meta (id integer PRIMARY KEY CHECK (id = 1),"
    " schema integer NOT NULL)"
)

#: How long dropping an unused index may wait for ``bw_entries``' lock at start-up.
_DROP_LOCK_TIMEOUT = "2s"


def migrate(conn: psycopg.Connection[Any], where: str) -> None:
    """Create or upgrade the schema; concurrent starts wait on one advisory lock."""
    row = conn.execute("SELECT current_setting('server_encoding')").fetchone()
    encoding = row[0] if row else "?"
    if encoding != "UTF8":
        raise InvalidArgument(
            f"botwire: the database on {where} has encoding {encoding}; botwire needs "
            "UTF8 (keys are ordered by UTF-8 bytes). Create it with "
            "CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0."
        )
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        # CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists: a
        # role with rights on the tables alone (another role owns and migrates the schema, the
        # default on PostgreSQL 15+) could not start a current schema. DDL only when needed.
        row = conn.execute("SELECT to_regclass('bw_meta')").fetchone()
        if row is None or row[0] is None:
            conn.execute(_META)
        row = conn.execute("SELECT schema FROM bw_meta WHERE id = 1").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise InvalidArgument(
                f"botwire: the database on {where} has schema {current}, newer than "
                f"this botwire-server understands ({SCHEMA_VERSION}); upgrade botwire-server."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
        if current != SCHEMA_VERSION:
            conn.execute(
                "INSERT INTO bw_meta (id, schema) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET schema = excluded.schema",
                (SCHEMA_VERSION,),
            )
        _drop_recent_index(conn)
        row = conn.execute("SELECT to_regclass('bw_items_pkey')").fetchone()
        if row is not None and row[0] is not None:
            # told loudly on the start that migrates, quietly on the others
            log.log(logging.WARNING if current < ITEMS_SCHEMA else logging.INFO, _ITEMS_PKEY_NOTE)


def _drop_recent_index(conn: psycopg.Connection[Any]) -> None:
    """Drop the index the compatibility listing read before issue 22 (``RECENT_INDEX_DROP``),
    outside the schema's numbering: a replica of the previous release still starts (and
    works without it). Dropping waits for the writes in flight on ``bw_entries`` and holds
    the next ones behind it, so it gives up after :data:`_DROP_LOCK_TIMEOUT` (busy replicas)
    and the next start tries again; a role that does not own the index leaves it, and says
    so."""
    row = conn.execute("SELECT to_regclass('bw_entries_recent')").fetchone()
    if row is None or row[0] is None:
        return
    try:
        with conn.transaction():  # a savepoint: a timeout undoes only the drop
            conn.execute(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
            conn.execute(RECENT_INDEX_DROP)
    except psycopg.errors.LockNotAvailable:
        log.warning(
            "botwire: bw_entries_recent (unused since issue 22) was not dropped: bw_entries "
            "stayed busy for %s; the next start tries again",
            _DROP_LOCK_TIMEOUT,
        )
    except psycopg.errors.InsufficientPrivilege:
        # a server role that may write the tables but does not own them (another role
        # created the schema): serving needs nothing more, the index only costs writes
        log.warning(
            "botwire: bw_entries_recent (unused since issue 22, it slows every write) was not "
            "dropped: this role does not own it; run DROP INDEX bw_entries_recent as its owner"
        )
