"""Storage backends behind :class:`botwire.Memory`: one protocol, several engines.

``SQLiteStore`` is the embedded engine (stdlib ``sqlite3``, loaded only when used); the server
package adds ``PostgresStore`` on the same :class:`~botwire.store.Engine` semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._types import Entry, KeyInfo, KeyPage, Limits, Op, Usage
from ._protocol import AsyncStore, Store

if TYPE_CHECKING:
    from ._sql import Engine, Tx
    from ._sqlite import SQLiteStore

__all__ = [
    "AsyncStore",
    "Engine",
    "Entry",
    "KeyInfo",
    "KeyPage",
    "Limits",
    "Op",
    "SQLiteStore",
    "Store",
    "Tx",
    "Usage",
]


def __getattr__(name: str) -> Any:
    # sqlite3 costs import time; load it only when a SQLite store is really wanted.
    if name == "SQLiteStore":
        from ._sqlite import SQLiteStore

        return SQLiteStore
    if name in ("Engine", "Tx"):
        from . import _sql

        return getattr(_sql, name)
    raise AttributeError(f"module 'botwire.store' has no attribute {name!r}")
