"""Shared by the tests of writes sent repeat-safe (no Idempotency-Key): a real server on a
SQLite file, and the idempotency records it keeps, read from that file."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import ServerProcess, running_server

__all__ = ["records", "served_on_file"]


@contextlib.contextmanager
def served_on_file(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[ServerProcess, Path]]:
    """A running server on a fresh SQLite file, and the file."""
    db = tmp_path_factory.mktemp(name) / "s.db"
    with running_server(database=db) as server:
        yield server, db


def records(db: Path, namespace: str) -> int:
    """Idempotency records the server keeps for ``namespace`` (read from its file)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*) FROM bw_idempotency WHERE ns = ?", (namespace,))
        return int(row.fetchone()[0])
