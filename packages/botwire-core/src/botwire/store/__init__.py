"""Storage backends behind :class:`botwire.Memory`: one protocol, several engines.

The protocol (:class:`Store`, :class:`AsyncStore`, the optional ``Supports*`` capabilities
in :data:`OPTIONAL` and :func:`capabilities`) is what a store of your own implements;
``botwire.testing`` runs the conformance suite against one. ``SQLiteStore`` is the embedded
engine (stdlib ``sqlite3``, loaded only when used); the server package adds ``PostgresStore``
on the same :class:`~botwire.store.Engine` semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._types import Changes, Entry, KeyInfo, KeyPage, Limits, Op, Policy, Usage
from . import _protocol
from ._protocol import *  # noqa: F403 - the protocol and its capabilities, as _protocol.__all__

if TYPE_CHECKING:
    from ._sql import Engine, Tx
    from ._sqlite import SQLiteStore

# The protocol's names come from its own __all__ (a capability declared there is exported
# here without an edit); these are the store package's other names.
__all__ = [
    "Changes",
    "Engine",
    "Entry",
    "KeyInfo",
    "KeyPage",
    "Limits",
    "Op",
    "Policy",
    "SQLiteStore",
    "Tx",
    "Usage",
]
__all__ += _protocol.__all__


def __getattr__(name: str) -> Any:
    # sqlite3 costs import time; load it only when a SQLite store is really wanted.
    if name == "SQLiteStore":
        from ._sqlite import SQLiteStore

        return SQLiteStore
    if name in ("Engine", "Tx"):
        from . import _sql

        return getattr(_sql, name)
    raise AttributeError(f"module 'botwire.store' has no attribute {name!r}")
