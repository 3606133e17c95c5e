"""``watch`` and ``watch_prefix`` (issue 18): wait for a key, or the keys under a prefix, to
change. A mixin of ``Commands`` (``botwire/_memory.py``), so ``Memory`` and ``AsyncMemory``
share one definition; the store does the waiting (``SupportsChanges``: a long-poll over HTTP,
``data_version`` polling on the embedded SQLite file)."""

from __future__ import annotations

from time import monotonic

from . import _common as c
from ._errors import InvalidArgument

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

    from ._memory import Returns, command
    from ._types import Changes, Entry
else:

    def command(fn):  # _memory's marker (importing it here would be circular)
        fn._botwire_command = True
        return fn


__all__ = ["MAX_CHANGES", "WatchCommands", "changes_method", "check_changes_args"]

#: The most keys one ``changes`` call returns (beyond one version's group).
MAX_CHANGES = 1000


def check_changes_args(ns: str, prefix: str, after: int | None, limit: int) -> None:
    """The arguments of a changes read, refused with the rule and the fix (client, engine and
    server share this check)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CHANGES:
        raise InvalidArgument(
            f"botwire: limit={limit!r} for changes in namespace {ns!r}; use 1 to {MAX_CHANGES}.",
            namespace=ns,
        )
    if after is not None and (
        isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63
    ):
        raise InvalidArgument(
            f"botwire: after={after!r} for changes in namespace {ns!r}; use a version (an "
            "int >= 0) returned by a write, an entry or a previous watch, or None.",
            namespace=ns,
        )
    if not isinstance(prefix, str) or "\x00" in prefix or len(prefix.encode("utf-8")) > 1024:
        raise InvalidArgument(
            f"botwire: prefix {prefix!r} for changes in namespace {ns!r} must be a string of "
            "at most 1024 UTF-8 bytes without NUL.",
            namespace=ns,
        )


def changes_method(store: Any, ns: str) -> Any:
    """``store``'s ``changes`` (``SupportsChanges``), or a clear error for a store without (the
    client's commands and the threaded runner share it)."""
    changes = getattr(store, "changes", None)
    if changes is None:
        raise InvalidArgument(
            f"botwire: the store behind namespace {ns!r} ({type(store).__name__}) cannot watch "
            "(it has no changes(), SupportsChanges); use the embedded SQLite store or a "
            "botwire server.",
            namespace=ns,
        )
    return changes


def _check_timeout(ns: str, timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise InvalidArgument(
            f"botwire: timeout={timeout!r} for a watch in namespace {ns!r}; use seconds >= 0 "
            "(0: look once, do not wait).",
            namespace=ns,
        )
    return float(timeout)


class WatchCommands:
    """``watch`` and ``watch_prefix``, commands of ``Memory`` and ``AsyncMemory``."""

    namespace: str
    _store: Any

    def _changes(self) -> Any:
        return changes_method(self._store, self.namespace)

    @command
    def watch_prefix(
        self,
        prefix: str = "",
        *,
        after: int | None = None,
        timeout: float = 25.0,
        limit: int = 1000,
    ) -> Returns[Changes]:
        """Wait up to ``timeout`` seconds for keys under ``prefix`` to change after version
        ``after``; returns a :class:`~botwire.Changes`: the latest state of each changed key
        (deletions as tombstones, ``Entry.deleted``), in version order, and ``version``, the
        resume point to pass as ``after`` next time (``more``: call again at once). With
        ``after=None`` it returns the current entries at once. A resume point older than the
        store's tombstone retention (1 h by default) raises :class:`~botwire.Compacted`:
        re-read with ``after=None``."""
        ns = self.namespace
        check_changes_args(ns, prefix, after, limit)
        wait = _check_timeout(ns, timeout)
        found: Changes = yield self._changes()(
            ns, prefix=prefix, after=after, limit=limit, wait=0.0 if after is None else wait
        )
        return found

    @command
    def watch(
        self, key: str, *, after: int | None = None, timeout: float = 25.0
    ) -> Returns[Entry | None]:
        """Wait up to ``timeout`` seconds for ``key`` to change: its :class:`~botwire.Entry`
        as soon as its version is greater than ``after`` (a delete returns a tombstone,
        ``deleted=True``, ``value=None``), or ``None`` at the timeout. ``after=None``: the
        current entry at once if the key exists, else wait for it to be created. Pass the
        version you last saw (``entry.version``, a write's return value) as ``after``."""
        ns = self.namespace
        key = c.check_key(key, ns)
        wait = _check_timeout(ns, timeout)
        changes = self._changes()
        deadline = monotonic() + wait
        # Catching up: the key's current entry may lie past the first page when more than
        # MAX_CHANGES keys start with its name; later pages (after= the last page's version)
        # may then hold tombstones of keys deleted before this call, which are no change of
        # the key since the call began: skipped until a page reaches the end (no ``more``).
        catching_up = after is None
        if after is None:  # the key now; else from the version this read saw
            now: Changes = yield changes(ns, prefix=key, after=None, limit=MAX_CHANGES)
            for entry in now.entries:
                if entry.key == key:
                    return entry
            after, catching_up = now.version, now.more
        else:
            check_changes_args(ns, key, after, 1)
        while True:
            left = 0.0 if catching_up else max(0.0, deadline - monotonic())
            found: Changes = yield changes(
                ns, prefix=key, after=after, limit=MAX_CHANGES, wait=left
            )
            for entry in found.entries:  # the prefix matches longer keys too
                if entry.key == key and not (catching_up and entry.deleted):
                    return entry
            after = max(after, found.version)
            catching_up = catching_up and found.more
            if not found.more and monotonic() >= deadline:
                return None
