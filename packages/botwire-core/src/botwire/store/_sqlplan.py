"""The engine's write path is sans-I/O: a *plan* is a generator that yields the statements it
needs and receives each one's result, so one definition of every operation runs under a
synchronous driver (:func:`drive`: SQLite, PostgreSQL's threaded path) or an asynchronous one
(``botwire_server.storage._pg_write``: psycopg's ``AsyncConnection`` on the event loop).

A request is a tuple ``(kind, *args)``: ``kind`` names the :class:`~botwire.store.Tx` method
that serves it (``"one"``, ``"all"``, ``"run"``, ``"many"``, ``"lock"``, ``"savepoint"``,
``"rollback_savepoint"``, ``"release_savepoint"``), or ``"version"`` for a new version (the
backend's allocator); a driver may serve more kinds for plans it composes itself
(``"prefetch"``: ``botwire_server.storage._pg_group``). A driver sends back the method's
result; a statement that fails is *thrown into* the plan at the ``yield`` that asked for it,
exactly as a synchronous call would have raised there (the engine's per-op savepoints depend
on it).

Like the client's commands (``botwire._watch``: ``found = yield ...``), a plan composes with
``yield from``; nothing here does I/O or imports a driver.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._sqlbase import Tx

__all__ = ["RELEASE", "ROLLBACK", "SAVEPOINT", "VERSION", "Plan", "drive"]

T = TypeVar("T")
#: A plan returning ``T``: yields requests, receives their results.
Plan = Generator[tuple[Any, ...], Any, T]

VERSION = ("version",)
SAVEPOINT = ("savepoint",)
ROLLBACK = ("rollback_savepoint",)
RELEASE = ("release_savepoint",)


def drive(tx: Tx, plan: Plan[T], next_version: Callable[[Tx], int] | None = None) -> T:
    """Run ``plan`` on ``tx`` synchronously and return what it returns."""
    send, throw = plan.send, plan.throw
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            request = send(result) if error is None else throw(error)
        except StopIteration as stop:
            value: T = stop.value
            return value
        error = None
        try:
            kind = request[0]
            if kind == "version":
                assert next_version is not None, "this plan allocates no versions"
                result = next_version(tx)
            else:
                result = getattr(tx, kind)(*request[1:])
        except Exception as exc:  # raised inside the plan, where it asked
            error, result = exc, None
