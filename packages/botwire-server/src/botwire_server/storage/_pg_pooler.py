"""Is the PostgreSQL URL a transaction-mode pooler (PgBouncer ``pool_mode = transaction``,
and the like)? Behind one, each transaction of a client connection may run in another server
session, so session state does not follow the connection:

- **prepared statements**: psycopg prepares a statement after 5 uses on a connection; the next
  use may reach a session that lacks it (``prepared statement "_pg3_0" does not exist``) or holds
  ANOTHER statement under that name (measured through PgBouncer 1.18: a GET ran another
  statement's plan and failed on a wrong parameter type). ``prepare_threshold=None`` turns them
  off on both pools.
- **LISTEN**: the session that listens goes back to the pool; its notifications are dropped by
  PgBouncer ("got packet 'A' from server when not linked"). The watch listens on a direct
  connection (``--pg-listen-url``) or polls (``botwire_server.watch``).

:func:`shares_sessions` is the start-up probe of ``--pg-pooler auto``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

__all__ = ["PROBE_ROUNDS", "shares_sessions"]

#: Statements per connection of the probe: each round is one chance to see a shared session.
PROBE_ROUNDS = 4


def shares_sessions(dsn: str, **connect_kwargs: Any) -> bool:
    """True when two client connections to ``dsn`` reach the same server session, or one
    connection's session changes between two statements: only a transaction (or statement)
    pooler does that. A direct connection or a session-mode pooler gives each connection one
    backend for its life, so this never says True for them.

    PgBouncer hands a released server connection to the next client (LIFO by default), so the
    second connection's first statement usually reaches the first one's backend; under load it
    may not, so a few rounds are tried. A miss leaves prepared statements on: give
    ``--pg-pooler transaction`` to be sure.
    """
    kwargs = {**connect_kwargs, "autocommit": True, "prepare_threshold": None}
    first = psycopg.connect(dsn, **kwargs)
    try:
        second = psycopg.connect(dsn, **kwargs)
        try:
            seen: set[int] = set()
            for _ in range(PROBE_ROUNDS):
                a = _backend(first)
                b = _backend(second)
                if a == b or (seen and a not in seen):
                    return True
                seen.add(a)
            return False
        finally:
            with contextlib.suppress(Exception):
                second.close()
    finally:
        with contextlib.suppress(Exception):
            first.close()


def _backend(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])
