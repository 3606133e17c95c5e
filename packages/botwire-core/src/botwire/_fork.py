"""Fork safety: objects that hold sockets, SQLite handles or locks re-open them in a child.

A web app that builds ``Memory(...)`` at start-up and then forks workers (gunicorn
``--preload``, ``multiprocessing`` with fork, Celery's prefork pool) would otherwise share one
pooled socket between processes, each reading whatever answer arrives: another user's value.
Likewise SQLite forbids carrying a connection across ``fork()``, and a lock held by another
thread at the moment of the fork stays held forever in the child.

:func:`register` asks for ``obj._after_fork()`` to run in every child right after ``fork()``
(``os.register_at_fork``), before any other code of the child can use ``obj``, and holds
``obj._lock`` across the fork so no other thread is in the middle of a call when it happens.
Objects are held weakly; ``_after_fork`` must not raise and must not close what the parent still
uses (a child closing a SQLite connection can run the WAL cleanup the parent relies on).
"""

from __future__ import annotations

import os
from _weakref import ref  # not weakref: its import pulls in more than this module needs

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["abandon", "register"]

_objects: dict[int, Any] = {}  # id(weak reference) -> weak reference to the registered object
_hooked = False
# What the parent's objects held and a child must neither use nor close: kept alive here so the
# garbage collector never finalizes them in the child (one entry per object per fork).
_abandoned: list[Any] = []


_FORK_WAIT = 10.0  # seconds a fork waits for a call in progress on another thread to finish
_held: list[Any] = []  # locks taken before a fork, released after it in the parent


def _forget(r: Any) -> None:
    _objects.pop(id(r), None)


def _live() -> list[Any]:
    return [obj for obj in (r() for r in list(_objects.values())) if obj is not None]


def _before() -> None:
    """Wait for calls in progress on other threads: a thread inside SQLite holds SQLite's own
    mutexes, which a child could never take again (the pattern of ``logging``'s fork hooks)."""
    for obj in _live():
        lock = getattr(obj, "_lock", None)
        if lock is not None and lock.acquire(True, _FORK_WAIT):
            _held.append(lock)


def _in_parent() -> None:
    while _held:
        _held.pop().release()


def _in_child() -> None:
    _held.clear()  # the child replaces these locks in _after_fork
    for obj in _live():
        try:  # noqa: SIM105 -- never break the child's start; contextlib costs import time
            obj._after_fork()
        except Exception:
            pass


def register(obj: Any) -> None:
    """Run ``obj._after_fork()`` in each child forked after this call; ``obj._lock`` (if any) is
    held across the fork so that no call of another thread is half-way through it."""
    global _hooked
    if not _hooked and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before, after_in_parent=_in_parent, after_in_child=_in_child)
        _hooked = True
    r = ref(obj, _forget)
    _objects[id(r)] = r


def abandon(resource: Any) -> None:
    """Keep ``resource`` (the parent's socket or SQLite handle) referenced, never closed, here."""
    _abandoned.append(resource)
