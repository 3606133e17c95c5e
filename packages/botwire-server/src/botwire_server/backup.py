"""``botwire-server backup``: a consistent copy of a live SQLite store.

The copy is SQLite's online backup API run inside one read transaction on the source: in WAL
mode that transaction is a snapshot, so the copy is the store exactly as it was when the backup
started (every write acknowledged before it, none half-applied), while the server keeps
reading and writing (WAL readers and writers do not block each other). Pages are copied in
steps (``--pages``), the copy goes to ``OUT.partial``, is checked (``PRAGMA quick_check``),
synced and renamed to ``OUT`` (mode 0600), so ``OUT`` is either complete or absent.

Example::

    botwire-server backup --database /data/botwire.db /backups/botwire-2026-11-30.db

PostgreSQL has its own tools (``pg_dump``, base backups with WAL archiving for point-in-time
recovery): see docs/server.md, "Backup and restore".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Sequence

from botwire.store._readers import file_uri

from .settings import ConfigError, Settings

__all__ = ["backup", "main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire-server backup",
        description="Copy a SQLite store consistently while a server uses it. Restore: stop "
        "the server, put the copy in the store's place (remove the old file's -wal and -shm "
        "files), start the server. For PostgreSQL use pg_dump (see docs/server.md).",
    )
    p.add_argument("out", help="the file to write (refused if it exists, unless --force)")
    p.add_argument(
        "--database",
        default=None,
        help="the store: SQLite path or sqlite:/// URL (default as the server: "
        "env BOTWIRE_DATABASE_URL, else ./botwire.db)",
    )
    p.add_argument(
        "--pages", type=int, default=1024, help="pages copied per step (default 1024, 4 MiB)"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    return p


def backup(source: str, out: str, *, pages: int = 1024) -> tuple[int, float]:
    """Copy the SQLite store at ``source`` to ``out`` (see module docstring); returns the
    pages copied and the time of the snapshot (seconds since the epoch)."""
    if not os.path.isfile(source):
        raise FileNotFoundError(f"no SQLite store at {source!r}")
    partial = out + ".partial"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # mode=rw: never create a missing store; the source is only read.
    src = sqlite3.connect(file_uri(source, "rw"), uri=True, timeout=30, isolation_level=None)
    try:
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM bw_meta").fetchone()  # the snapshot starts here
            taken = time.time()
            total = src.execute("PRAGMA page_count").fetchone()[0]
            src.backup(dst, pages=max(1, pages))
            src.execute("COMMIT")
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise RuntimeError(f"the copy failed its check: {verdict}")
        finally:
            dst.close()
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    finally:
        src.close()
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, out)
    dirfd = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    try:
        os.fsync(dirfd)  # the rename itself survives a power cut
    finally:
        os.close(dirfd)
    return int(total), taken


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        settings = Settings.from_env(database=args.database)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.is_postgres:
        print(
            "botwire-server backup: copies SQLite stores; for PostgreSQL use pg_dump "
            "(pg_dump -Fc -d URL -f botwire.dump) or base backups with WAL archiving for "
            "point-in-time recovery: see docs/server.md, 'Backup and restore'.",
            file=sys.stderr,
        )
        return 2
    source = settings.sqlite_path
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not args.force:
        print(
            f"botwire-server backup: {out!r} exists; choose a new file or pass --force.",
            file=sys.stderr,
        )
        return 2
    if os.path.abspath(source) == out:
        print(
            "botwire-server backup: OUT is the store itself; choose another file.", file=sys.stderr
        )
        return 2
    started = time.perf_counter()
    try:
        pages, taken = backup(source, out, pages=args.pages)
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        print(f"botwire-server backup: cannot copy {source!r}: {exc}", file=sys.stderr)
        return 1
    took = time.perf_counter() - started
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(taken))
    print(
        f"botwire-server backup: copied {source!r} ({pages} pages) to {out!r} in {took:.2f} s; "
        f"it holds every write acknowledged before {stamp}."
    )
    return 0
