"""The server's storage: open the configured :class:`~botwire.store.Store` and call it.

``SQLiteStore`` (core) for a file path or ``sqlite:///`` URL; ``PostgresStore``
(:mod:`botwire_server.storage.postgres`, imported only for ``postgresql://`` URLs).
"""

from ._open import TestingClock, open_store
from ._runner import StoreRunner

__all__ = ["StoreRunner", "TestingClock", "open_store"]
