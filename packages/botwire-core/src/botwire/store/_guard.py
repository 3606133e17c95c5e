"""What the embedded store does when its file or its disk fails under it.

- **The file is removed, replaced or made read-only** while the store has it open: SQLite keeps
  writing to the open (possibly unlinked) inode and reports success, so every write would be
  acknowledged into a file no one will ever open again. :meth:`FileGuard.check_file` compares
  the path's device/inode with the ones opened (one ``stat``: 4.6 µs measured on a loaded
  machine) before every commit and in ``/readyz``, and refuses with
  :class:`~botwire.Unavailable` naming what happened and the fix.
- **The disk is full**: SQLite answers ``SQLITE_FULL``; the store raises
  :class:`~botwire.StorageFull` (HTTP 507, never retried). Deleting is how a user frees space, but
  a delete must append to the WAL too, so the store keeps a *reserve* file next to the database
  (``<db>.reserve``, 1 MiB or 1/16 of the filesystem, whichever is smaller) and releases it on the
  first ``SQLITE_FULL``: deletes and ``clear`` then find room. The reserve is re-created once the
  disk has room for it again (and the full state cleared), so a later full disk is handled the
  same way. Nothing acknowledged is lost: a failed transaction is rolled back whole.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time

from .._errors import BotWireError, StorageFull, Unavailable

__all__ = ["FileGuard", "busy_error", "is_full"]

SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
_RESERVE_MAX = 1 << 20
_RESERVE_MIN = 64 << 10


def is_full(exc: BaseException) -> bool:
    """Whether a sqlite3 error means "no space left" (``SQLITE_FULL``)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return bool(code & 0xFF == SQLITE_FULL)
    return "database or disk is full" in str(exc)


def busy_error(
    path: str, exc: BaseException, wait: float, ns: str | None = None, key: str | None = None
) -> Unavailable:
    """The write lock stayed taken by another connection past the busy timeout: say what holds
    such a lock and what to do, naming the write that waited (``sqlite3``'s text is only
    "database is locked")."""
    what = f" for key {key!r}" if key else ""
    where = f" in namespace {ns!r}" if ns else ""
    return Unavailable(
        f"botwire: a write{what}{where} waited {wait:g} s for SQLite file {path!r}, whose "
        f"write lock another connection held all along ({exc}): another process writing the "
        "same file (a second botwire-server or an embedded Memory on it, a long `botwire "
        "import`) or a long transaction. Nothing was written; retry later. Run one server "
        "per SQLite file, or PostgreSQL for several processes (docs/server.md).",
        namespace=ns,
        key=key,
    )


def _errcode(exc: BaseException) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class FileGuard:
    """Watches one database file (identity, mode) and its disk (full, the reserve)."""

    def __init__(self, path: str, *, reserve: bool = True) -> None:
        self.path = os.path.abspath(path)  # as opened: a later chdir must not matter
        path = self.path
        st = os.stat(path)
        self._ident = (st.st_dev, st.st_ino)
        self.reserve_path = path + ".reserve"
        self.reserve_bytes = 0
        self.full_since: float | None = None
        self._released = False  # the reserve was given back and not yet re-created
        self.fs_bytes = 0  # the filesystem's size (0: unknown)
        with contextlib.suppress(OSError):
            fs = os.statvfs(path)
            self.fs_bytes = fs.f_blocks * fs.f_frsize
        if reserve:
            self.reserve_bytes = max(_RESERVE_MIN, min(_RESERVE_MAX, self.fs_bytes // 16))
            self._make_reserve()

    # -- the file ----------------------------------------------------------------------------

    def check_file(self) -> None:
        """Raise :class:`~botwire.Unavailable` if the path no longer names the opened file, or
        if it was made read-only (its owner-write bit cleared: root ignores file modes)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise self._gone("was removed") from None
        except OSError as exc:
            raise self._gone(f"cannot be checked ({exc.strerror})") from exc
        if (st.st_dev, st.st_ino) != self._ident:
            raise self._gone("was replaced by another file")
        if not st.st_mode & 0o200:
            raise self._gone("was made read-only", readonly=True)

    def _gone(self, what: str, *, readonly: bool = False) -> Unavailable:
        fix = (
            "make it writable again (chmod u+w) to resume writes"
            if readonly
            else "restore the file (from a backup: see docs/server.md) and restart, so that "
            "writes go to the file that will be opened next time"
        )
        return Unavailable(
            f"botwire: the SQLite file {self.path!r} {what} while the store had it open; "
            f"writes are refused so that none is acknowledged into a file that is gone. Reads "
            f"still see the file as it was opened. To fix: {fix}.",
            reason="store_file_changed",
        )

    # -- a full disk -------------------------------------------------------------------------

    def free_bytes(self) -> int | None:
        try:
            fs = os.statvfs(self.path)
        except OSError:
            return None
        return fs.f_bavail * fs.f_frsize

    def _make_reserve(self) -> bool:
        if not self.reserve_bytes:
            return True
        if os.path.exists(self.reserve_path):
            return True
        tmp = self.reserve_path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                # Real blocks (not a sparse file): they must be there to give back.
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            finally:
                os.close(fd)
            os.replace(tmp, self.reserve_path)
            return True
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return False

    def release_reserve(self) -> bool:
        """Give the reserve's space back to the disk; ``True`` if there was one."""
        try:
            os.unlink(self.reserve_path)
        except OSError:
            return False
        self._released = True
        return True

    def on_full(self) -> bool:
        """Note a ``SQLITE_FULL``; returns whether space was just freed."""
        if self.full_since is None:
            self.full_since = time.time()
        return self.release_reserve()

    def on_success(self, added: bool) -> None:
        """After a committed write: one that added data proves there is room again; the
        reserve comes back once the disk can hold it (one ``statvfs``)."""
        if self.full_since is None and not self._released:
            return  # the common case: one attribute test per write
        if added:
            self.full_since = None
        self.recover()

    def recover(self, inner_free: int = 0) -> bool:
        """Leave the full state if the disk (or, ``inner_free``, the database's own free pages,
        freed by deletes) has room again, and re-create a released reserve when the disk can
        hold it. Returns ``True`` when not full."""
        if self.full_since is None and not self._released:
            return True
        need = max(self.reserve_bytes, _RESERVE_MIN)
        room = (self.free_bytes() or 0) >= 2 * need
        if room and self._released:
            room = self._make_reserve()
            self._released = not room
        if room or inner_free >= _RESERVE_MIN:
            self.full_since = None
        return self.full_since is None

    def full_error(self, namespace: str | None = None, key: str | None = None) -> StorageFull:
        free = self.free_bytes()
        what = ""
        if namespace is not None:
            what = (
                f" (writing key {key!r} in namespace {namespace!r})"
                if key is not None
                else f" (writing namespace {namespace!r})"
            )
        return StorageFull(
            f"botwire: the disk holding the SQLite file {self.path!r} is full{what}"
            + (f" ({free} bytes free)" if free is not None else "")
            + ": writes are refused until space is freed. Delete keys or clear namespaces you "
            "no longer need (deletes and clear keep working), or free space on that disk "
            "(remove other files, grow the volume); writes resume by themselves, no restart "
            "needed.",
            namespace=namespace,
            key=key,
            free_bytes=free,
        )

    def failure(self, exc: sqlite3.Error) -> BotWireError | None:
        """The clear error for a sqlite3 failure of a write, or ``None`` to re-raise it."""
        if is_full(exc):
            return self.full_error()
        code = _errcode(exc)
        if code in (SQLITE_READONLY, SQLITE_IOERR):
            self.check_file()  # removed/replaced/read-only explains it best
            free = self.free_bytes()
            if code == SQLITE_IOERR and free is not None and free < _RESERVE_MIN:
                return self.full_error()  # ENOSPC seen as an I/O error (WAL index, mmap)
            return Unavailable(
                f"botwire: SQLite cannot write {self.path!r}: {exc}. Check the disk and the "
                "file's permissions; writes resume once it is writable again.",
                reason="store_io_error",
            )
        return None
