"""Opening the store named by the settings, with an optionally movable clock."""

from __future__ import annotations

import os
import time
from typing import Any

from botwire._clock import TestingClock  # one definition, shared with the tests
from botwire.store import Store

from ..settings import Settings

__all__ = ["RESPONSE_OVERHEAD", "TestingClock", "apply_list_limits", "open_store"]


def open_store(settings: Settings, clock: Any = time.time) -> Store:
    """The store for ``settings.database`` with ``settings.limits`` enforced."""
    store: Store
    if settings.is_postgres:
        from .postgres import PostgresStore

        # The database's clock, so replicas agree on TTLs and quota days; a testing clock
        # only adds its offset to it.
        offset = (lambda: clock.offset) if isinstance(clock, TestingClock) else None
        # Writes on the event loop (issue 22): opt-in until they measure faster than threads.
        on_loop = os.environ.get("BOTWIRE_PG_ASYNC_WRITES", "").strip().lower()
        store = PostgresStore(
            settings.database,
            limits=settings.limits,
            clock_offset=offset,
            async_writes=on_loop in ("1", "true", "yes", "on"),
        )
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
