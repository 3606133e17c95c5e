"""Opening the store named by the settings, with an optionally movable clock."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from botwire._clock import TestingClock  # one definition, shared with the tests
from botwire.store import Store

from ..settings import ConfigError, Settings

__all__ = ["RESPONSE_OVERHEAD", "TestingClock", "apply_list_limits", "open_store"]

log = logging.getLogger("botwire_server")


def open_store(settings: Settings, clock: Any = time.time) -> Store:
    """The store for ``settings.database`` with ``settings.limits`` enforced."""
    store: Store
    if settings.is_postgres:
        from .postgres import PostgresStore

        # The database's clock, so replicas agree on TTLs and quota days; a testing clock
        # only adds its offset to it.
        offset = (lambda: clock.offset) if isinstance(clock, TestingClock) else None
        pooled = _transaction_pooler(settings)
        # Behind a transaction pooler a prepared statement may be run in a session that lacks
        # it, or that holds another one under its name (storage/_pg_pooler.py): off for all pools.
        extra: dict[str, Any] = {"prepare_threshold": None} if pooled else {}
        # Writes on the event loop (issue 22): 1.6-2.3x the thread pool's SET/APPEND rate on a
        # quiet 2-core machine (docs/benchmarks-log.md); BOTWIRE_PG_ASYNC_WRITES=0 keeps the
        # threads.
        on_loop = os.environ.get("BOTWIRE_PG_ASYNC_WRITES", "1").strip().lower()
        store = PostgresStore(
            settings.database,
            limits=settings.limits,
            clock_offset=offset,
            async_writes=on_loop not in ("0", "false", "no", "off"),
            notify=False,  # the watch hub notifies other replicas, coalesced (watch.py)
            **extra,
        )
        # Read by the watch hub (botwire_server.watch): LISTEN through the pooler is lost.
        store.transaction_pooler = pooled  # type: ignore[attr-defined]
    else:
        from botwire.store import SQLiteStore

        store = SQLiteStore(
            settings.sqlite_path,
            limits=settings.limits,
            clock=clock,
            synchronous=settings.synchronous,
            # Checkpoints (WAL copy + fsync) in a thread of their own, not in a request's commit.
            background_checkpoint=0.25,
            # A reserve file, released on a full disk so that deletes and clear still find room.
            reserve_space=True,
            # Rows of trimmed/deleted long lists: swept by the StoreRunner in a worker thread.
            auto_sweep=False,
        )
    apply_list_limits(store, settings)
    return store


def _transaction_pooler(settings: Settings) -> bool:
    """Whether ``settings.database`` reaches PostgreSQL through a transaction-mode pooler.
    ``--pg-pooler transaction`` says so; ``auto`` probes and says what it found; ``none``
    probes too and refuses to start (:class:`ConfigError`) when the probe contradicts it:
    prepared statements would then run in other clients' sessions (storage/_pg_pooler.py)."""
    if settings.pg_pooler == "transaction":
        return True
    import psycopg

    from ._pg_pooler import shares_sessions

    try:
        pooled = shares_sessions(settings.database, connect_timeout=10, application_name="botwire")
    except psycopg.Error:
        return False  # the store's own connection reports what is wrong, precisely
    if pooled and settings.pg_pooler == "none":
        raise ConfigError(
            "botwire-server: --pg-pooler none (BOTWIRE_PG_POOLER), but the database URL leads to "
            "a transaction-mode pooler (PgBouncer pool_mode=transaction or alike: two "
            "connections shared one PostgreSQL session), where prepared statements reach other "
            "clients' sessions. Use --pg-pooler transaction (or auto), or point --database at "
            "PostgreSQL or at a session-mode pool."
        )
    if pooled:
        log.warning(
            "the database URL leads to a transaction-mode pooler (PgBouncer pool_mode=transaction"
            " or alike: two connections shared one PostgreSQL session): prepared statements are"
            " off; pass --pg-pooler transaction to say so and skip this probe."
        )
    return pooled


def apply_list_limits(store: Store, settings: Settings) -> None:
    """Hand the server's list limits to the store's engine (checked in the write transaction):
    no list outgrows what one response may carry, so reading it whole stays bounded."""
    engine = getattr(store, "engine", None)
    if engine is None:
        return
    engine.policy = settings.policy  # the store-wide retention policy (issue 18)
    engine.max_append_items = settings.max_append_items
    engine.max_list_length = settings.max_list_length
    engine.max_list_bytes = (
        settings.max_response_bytes - RESPONSE_OVERHEAD if settings.max_response_bytes else 0
    )


#: Room left in a response for what surrounds a list's JSON (the entry's other fields).
RESPONSE_OVERHEAD = 4096
