"""The embedded store's housekeeping and retention policies (issue 18): ``purge_expired``,
``SupportsPolicy`` and the policies' housekeeping, a mixin of
:class:`~botwire.store.SQLiteStore` (kept apart for its size)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._names import check_namespace
from .._types import Policy

if TYPE_CHECKING:
    from ._sql import Engine, Tx

PURGE_BATCH = 100  # namespaces per batch of purge_expired() (one transaction each)
#: Namespaces (or lists) per batch of the policies' housekeeping, one transaction each.
POLICY_BATCH = 100


class PolicyMixin:
    """``get_policy``/``set_policy`` and :meth:`_enforce_policies` over the store's
    ``engine``, ``clock``, ``_read()`` and ``_transact()``."""

    engine: Engine
    clock: Callable[[], float]
    auto_sweep: bool
    _rows: Any
    _read: Callable[[], AbstractContextManager[Tx]]
    _write: Callable[[], AbstractContextManager[Tx]]
    _transact: Callable[..., Any]
    prune_tombstones: Callable[..., int]
    sweep: Callable[..., int]
    #: Namespaces cleared, lists trimmed and tombstone batches pruned by this store's
    #: housekeeping so far (a server's watch poller wakes on it: ``foreign_version``)
    retention_changes = 0

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
            self.retention_changes += len(idle) + len(lists)
            if len(idle) < POLICY_BATCH and len(lists) < POLICY_BATCH:
                break
        return cleared

    def purge_expired(self, *, max_batches: int | None = None) -> int:
        """Delete expired entries store-wide and forget idempotency records older than a day.

        Works in batches of :data:`PURGE_BATCH` namespaces, one short transaction per
        namespace, until none has an expired entry left (or after ``max_batches``); the lock
        is released between transactions, so requests interleave with a long purge.
        """
        purged = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            now = self.clock()
            with self._read() as tx:
                namespaces = self.engine.expired_namespaces(tx, now, PURGE_BATCH)
            gone = 0
            for ns in namespaces:
                gone += self._transact(
                    functools.partial(self._purge_one, ns=ns, now=now), frees=True
                )
                time.sleep(0)  # let a waiting request thread take the lock
            purged += gone
            if len(namespaces) < PURGE_BATCH or not gone:
                break
        while True:  # a bounded number of namespaces per transaction
            with self._write() as tx:
                done = self.engine.forget_idempotency(tx, self.clock(), PURGE_BATCH)
            if done < PURGE_BATCH:
                break
        purged += self._enforce_policies(max_batches)
        if self.prune_tombstones(max_batches=max_batches):
            self.retention_changes += 1  # a resume point may now be compacted (410)
        # leftovers of long lists: a bounded purge (inside a request) sweeps only for a store
        # that sweeps itself; the server's housekeeping (unbounded, in a thread) always does
        if self._rows.trashed and (self.auto_sweep or max_batches is None):
            self.sweep(max_chunks=max_batches and max_batches * 10)
        return purged

    def _purge_one(self, tx: Tx, ns: str, now: float) -> int:
        stats, at = self.engine.lock_namespace_at(tx, ns, now)
        gone = self.engine.purge_namespace(tx, ns, at, stats)
        self.engine.save_namespace(tx, ns, stats)
        return gone


__all__ = ["POLICY_BATCH", "PURGE_BATCH", "PolicyMixin"]
