"""The embedded store's retention policies (issue 18): ``SupportsPolicy`` and the policies'
housekeeping, a mixin of :class:`~botwire.store.SQLiteStore` (kept apart for its size)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._names import check_namespace
from .._types import Policy

if TYPE_CHECKING:
    from ._sql import Engine, Tx

#: Namespaces (or lists) per batch of the policies' housekeeping, one transaction each.
POLICY_BATCH = 100


class PolicyMixin:
    """``get_policy``/``set_policy`` and :meth:`_enforce_policies` over the store's
    ``engine``, ``clock``, ``_read()`` and ``_transact()``."""

    engine: Engine
    clock: Callable[[], float]
    _read: Callable[[], AbstractContextManager[Tx]]
    _transact: Callable[..., Any]

    def get_policy(self, namespace: str) -> Policy:
        """The namespace's retention policy in force (``SupportsPolicy``)."""
        check_namespace(namespace)
        with self._read() as tx:
            return self.engine.get_policy(tx, namespace)

    def set_policy(self, namespace: str, changes: dict[str, float | int | None]) -> Policy:
        """Change the namespace's retention policy (``SupportsPolicy``): enforced from the next
        write, and by ``purge_expired`` (housekeeping) for what is stored already."""
        check_namespace(namespace)
        now = self.clock()
        policy: Policy = self._transact(
            lambda tx: self.engine.set_policy(tx, namespace, now, changes), frees=True
        )
        return policy

    def _enforce_policies(self, max_batches: int | None) -> int:
        """Clear namespaces idle past their ``max_idle`` and trim lists longer than a lowered
        ``max_list_len``, one short transaction each, in batches of :data:`POLICY_BATCH`;
        return the keys cleared."""
        cleared = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            now = self.clock()
            with self._read() as tx:
                idle = self.engine.idle_namespaces(tx, now, POLICY_BATCH)
            for ns in idle:
                clear = functools.partial(self.engine.clear_idle, ns=ns, now=now)
                cleared += self._transact(clear, frees=True)
            with self._read() as tx:
                lists = self.engine.long_lists(tx, POLICY_BATCH)
            for ns, key in lists:
                trim = functools.partial(self.engine.trim_list, ns=ns, key=key, now=now)
                self._transact(trim, frees=True)
            if len(idle) < POLICY_BATCH and len(lists) < POLICY_BATCH:
                break
        return cleared


__all__ = ["POLICY_BATCH", "PolicyMixin"]
