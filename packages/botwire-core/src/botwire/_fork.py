"""Fork safety: objects that hold sockets, SQLite handles or locks re-open them in a child.

A web app that builds ``Memory(...)`` at start-up and then forks workers (gunicorn
``--preload``, ``multiprocessing`` with fork, Celery's prefork pool) would otherwise share one
pooled socket between processes, each reading whatever answer arrives: another user's value.
Likewise SQLite forbids carrying a connection across ``fork()``, and a lock held by another
thread at the moment of the fork stays held forever in the child.

:func:`register` asks for ``obj._after_fork()`` to run in every child right after ``fork()``
(``os.register_at_fork``), before any other code of the child can use ``obj``. Objects are held
weakly; ``_after_fork`` must not raise and must not close what the parent still uses (a child
closing a SQLite connection can run the WAL cleanup the parent relies on).
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


def _forget(r: Any) -> None:
    _objects.pop(id(r), None)


def _in_child() -> None:
    for r in list(_objects.values()):
        obj = r()
        if obj is not None:
            try:  # noqa: SIM105 -- never break the child's start; contextlib costs import time
                obj._after_fork()
            except Exception:
                pass


def register(obj: Any) -> None:
    """Call ``obj._after_fork()`` in each child process forked after this call."""
    global _hooked
    if not _hooked and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_in_child)
        _hooked = True
    r = ref(obj, _forget)
    _objects[id(r)] = r


def abandon(resource: Any) -> None:
    """Keep ``resource`` (the parent's socket or SQLite handle) referenced, never closed, here."""
    _abandoned.append(resource)
