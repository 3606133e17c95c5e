"""A ``Tx`` that records the statements an engine call sends and answers nothing: for tests
that look at those statements' plans (``test_policy_indexes``, on each engine)."""

from __future__ import annotations

from typing import Any


class RecordedTx:
    """Keeps each ``all`` call's SQL (the engine's ``?`` placeholders) and parameters.

    Example::

        tx = RecordedTx()
        engine.long_lists(tx, 100)
        sql, params = tx.sent[0]
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def all(self, sql: str, params: Any = ()) -> list[Any]:
        self.sent.append((sql, tuple(params)))
        return []
