"""The engine's change feed (issue 18, watch): tombstones, ``changes`` and their pruning.

A delete (op ``delete``, a ``clear``, an expired row removed by a write) records a tombstone
``(ns, key, version, at)`` in ``bw_tombstones`` with the write's version (one per batch, from
the store-wide sequence); a key created again drops its tombstone, so a key has a live row or
a tombstone, never both. :meth:`Watching.changes` reads live entries and tombstones above a
version, in version order. Tombstones are kept :attr:`Watching.tombstone_seconds` (the
server's ``--tombstone-retention``, default 1 h) and pruned by housekeeping; the highest
pruned version per namespace is kept in ``bw_compacted``, and a resume point below it raises
:class:`~botwire.Compacted`. Expiry by TTL (a purge) records no tombstone: it is no event.

Correctness rests on one invariant: within one namespace, versions are commit-ordered (a reader
never sees version N+1 committed while N of the same namespace is in flight). SQLite's
``BEGIN IMMEDIATE`` serializes every writer; on PostgreSQL every write takes its namespace's
row lock first and its version after it (``docs/design.md``, "Watch").
"""

from __future__ import annotations

from typing import Any

from .._codec import decode
from .._errors import Compacted
from .._types import Changes, Entry
from .._watch import MAX_CHANGES, check_changes_args
from ._sqlbase import Tx
from ._sqlmaint import Maintenance
from ._sqltext import LIST, TOMBSTONE_SQL, UNTOMB_SQL, prefix_upper_bound

__all__ = [
    "MAX_CHANGES",
    "TOMBSTONE_SECONDS",
    "WATCH_SCHEMA",
    "Watching",
    "check_changes_args",
    "high_water_sql",
]

#: Default tombstone retention (seconds): deletions older than this may be forgotten.
TOMBSTONE_SECONDS = 3600.0
#: Tombstones pruned per statement (housekeeping loops).
PRUNE_BATCH = 1000


def high_water_sql(ns: str) -> str:
    """The ``SELECT`` of a namespace's high-water version (:meth:`Watching.high_water`): one
    index lookup in each of the three places a version stays. ``ns`` is the SQL that names the
    namespace: ``?`` (then given three times), or a column of an outer query, so a poller reads
    many namespaces in one statement (``PostgresStore.high_waters``)."""
    return (
        f"SELECT max(v) FROM (SELECT max(version) AS v FROM bw_entries WHERE ns = {ns}"
        f" UNION ALL SELECT max(version) FROM bw_tombstones WHERE ns = {ns}"
        f" UNION ALL SELECT version FROM bw_compacted WHERE ns = {ns}) AS m"
    )


#: The schema objects the change feed needs, for both engines (``{text}``: the key type).
#: SQLite runs them on every open (``IF NOT EXISTS``); PostgreSQL as one migration.
WATCH_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bw_tombstones (ns {text}, key {text},"
    " version {bigint} NOT NULL, at {real} NOT NULL, PRIMARY KEY (ns, key)){without_rowid}",
    "CREATE INDEX IF NOT EXISTS bw_tombstones_version ON bw_tombstones (ns, version)",
    "CREATE INDEX IF NOT EXISTS bw_tombstones_at ON bw_tombstones (at)",
    "CREATE TABLE IF NOT EXISTS bw_compacted (ns {text} PRIMARY KEY,"
    " version {bigint} NOT NULL){without_rowid}",
    "CREATE INDEX IF NOT EXISTS bw_entries_version ON bw_entries (ns, version)",
)

# every row of the namespace (expired ones too) is about to go: one tombstone each
CLEAR_TOMBS_SQL = (
    "INSERT INTO bw_tombstones (ns, key, version, at) SELECT ns, key, ?, ? FROM bw_entries"
    " WHERE ns = ? ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version,"
    " at = excluded.at"
)


class Watching(Maintenance):
    """Tombstones and the change feed (see the module docstring)."""

    #: seconds a tombstone is kept before housekeeping may prune it
    tombstone_seconds: float = TOMBSTONE_SECONDS

    def tombstone_request(self, ns: str, key: str, version: int, now: float) -> tuple[Any, ...]:
        """The request recording that ``key`` was deleted at ``version`` (inside the write)."""
        return ("run", TOMBSTONE_SQL, (ns, key, version, now))

    def untomb_request(self, ns: str, key: str) -> tuple[Any, ...]:
        """The request for ``key`` created again: its tombstone goes."""
        return ("run", UNTOMB_SQL, (ns, key))

    def tomb_all(self, tx: Tx, ns: str, now: float) -> None:
        """Before a ``clear`` deletes the namespace's rows: one tombstone per row, with one
        new version (the clear's)."""
        tx.run(CLEAR_TOMBS_SQL, (self.next_version(tx), now, ns))

    def changes(
        self, tx: Tx, ns: str, prefix: str, after: int | None, limit: int, now: float
    ) -> Changes:
        """What changed under ``prefix`` after ``after`` (``None``: the live entries), read in
        ``tx`` (one snapshot: the backend begins a read transaction).

        At most ``limit`` keys, except that a version's keys are never split across calls
        (the resume point is a version): a batch's or a ``clear``'s keys come together."""
        check_changes_args(ns, prefix, after, limit)
        if after is not None:
            row = tx.one("SELECT version FROM bw_compacted WHERE ns = ?", (ns,))
            if row is not None and after < int(row[0]):
                raise Compacted(
                    f"botwire: resume point after={after} in namespace {ns!r} is older than "
                    f"this store's tombstone retention ({self.tombstone_seconds:g} s; deletions "
                    f"up to version {int(row[0])} were forgotten). Re-read with after=None "
                    "(watch_prefix() / watch() without after) and resume from the version it "
                    "returns.",
                    namespace=ns,
                    compacted=int(row[0]),
                )
        start = -1 if after is None else after
        where, params = _prefix_where(prefix)
        version = _version_column(tx, "bw_entries", ns, where, params)
        live = tx.all(
            "SELECT key, kind, value, version, created_at, updated_at, expires_at FROM bw_entries"
            f" WHERE ns = ? AND {version} > ?{where} AND (expires_at IS NULL OR expires_at > ?)"
            " ORDER BY version, key LIMIT ?",
            (ns, start, *params, now, limit + 1),
        )
        tombs: list[tuple[Any, ...]] = []
        if after is not None:
            version = _version_column(tx, "bw_tombstones", ns, where, params)
            tombs = tx.all(
                "SELECT key, version, at FROM bw_tombstones"
                f" WHERE ns = ? AND {version} > ?{where} ORDER BY version, key LIMIT ?",
                (ns, start, *params, limit + 1),
            )
        rows = sorted(
            [(int(r[3]), str(r[0]), r) for r in live] + [(int(t[1]), str(t[0]), t) for t in tombs],
            key=lambda item: (item[0], item[1]),
        )
        more = len(rows) > limit
        if more:
            cut = rows[limit][0]  # that version may be incomplete: it comes next time ...
            kept = [r for r in rows if r[0] < cut]
            if not kept:  # ... unless one version alone fills the page: it comes whole
                return self._one_version(tx, ns, prefix, cut, now, after is not None)
            rows = kept
        entries = [self._entry(tx, ns, r, now) for _, _, r in rows]
        if more:
            return Changes(entries, entries[-1].version, True)
        return Changes(entries, max(start, self.high_water(tx, ns)), False)

    def _one_version(
        self, tx: Tx, ns: str, prefix: str, version: int, now: float, tombs: bool
    ) -> Changes:
        where, params = _prefix_where(prefix)
        rows: list[tuple[Any, ...]] = list(
            tx.all(
                "SELECT key, kind, value, version, created_at, updated_at, expires_at"
                f" FROM bw_entries WHERE ns = ? AND version = ?{where}"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
                (ns, version, *params, now),
            )
        )
        if tombs:
            rows += tx.all(
                "SELECT key, version, at FROM bw_tombstones"
                f" WHERE ns = ? AND version = ?{where} ORDER BY key",
                (ns, version, *params),
            )
        rows.sort(key=lambda r: str(r[0]))
        return Changes([self._entry(tx, ns, r, now) for r in rows], version, True)

    def _entry(self, tx: Tx, ns: str, row: tuple[Any, ...], now: float) -> Entry:
        if len(row) == 3:  # a tombstone: (key, version, at)
            key, version, at = row
            return Entry(str(key), None, int(version), float(at), float(at), None, True)
        key, kind, value, version, created, updated, expires = row
        if kind == LIST:  # its items live in bw_items: read it whole (same snapshot)
            entry = self.read(tx, ns, str(key), None, now)
            if entry is not None:
                return entry
            value = "[]"
        return Entry(
            str(key),
            decode(str(value)),
            int(version),
            float(created),
            float(updated),
            None if expires is None else float(expires),
        )

    def changed_keys(self, tx: Tx, ns: str, after: int, limit: int) -> list[str] | None:
        """The keys of ``ns`` written or deleted after version ``after``, at most ``limit``;
        ``None`` when there are more, or when pruning forgot deletions after ``after`` (then
        every waiter must read, to be told 410): what a server's poller wakes waiters by."""
        row = tx.one("SELECT version FROM bw_compacted WHERE ns = ?", (ns,))
        if row is not None and int(row[0]) > after:
            return None
        # UNION ALL: the LIMIT stops the reading (UNION would first gather every row to
        # drop duplicates, 60,000 rows for a poller that last looked long ago); a key is an
        # entry or a tombstone, never both (and a duplicate would only count toward the limit)
        rows = tx.all(
            "SELECT key FROM bw_entries WHERE ns = ? AND version > ?"
            " UNION ALL SELECT key FROM bw_tombstones WHERE ns = ? AND version > ? LIMIT ?",
            (ns, after, ns, after, limit + 1),
        )
        return None if len(rows) > limit else [str(r[0]) for r in rows]

    def high_water(self, tx: Tx, ns: str) -> int:
        """The highest version the namespace's entries, tombstones or pruning reached (0 when
        none): every later write to it takes a higher one, so it is a safe resume point."""
        row = tx.one(high_water_sql("?"), (ns, ns, ns))
        return int(row[0]) if row is not None and row[0] is not None else 0

    def prune_tombstones(self, tx: Tx, now: float) -> int:
        """Forget up to :data:`PRUNE_BATCH` tombstones older than :attr:`tombstone_seconds`,
        remembering per namespace the highest version forgotten; return how many went (call
        again while it returns :data:`PRUNE_BATCH`)."""
        gone = tx.all(
            "DELETE FROM bw_tombstones WHERE (ns, key) IN (SELECT ns, key FROM bw_tombstones"
            f" WHERE at < {self._now_sql} - ? LIMIT ?) RETURNING ns, version",
            (now, self.tombstone_seconds, PRUNE_BATCH),
        )
        highest: dict[str, int] = {}
        for ns, version in gone:
            highest[ns] = max(highest.get(ns, 0), int(version))
        if highest:
            tx.many(
                "INSERT INTO bw_compacted (ns, version) VALUES (?, ?) ON CONFLICT (ns)"
                " DO UPDATE SET version = CASE WHEN excluded.version > bw_compacted.version"
                " THEN excluded.version ELSE bw_compacted.version END",
                sorted(highest.items()),
            )
        return len(gone)


#: Up to this many rows under a prefix, a changes read walks the prefix's key range (sorting
#: what it finds) rather than the namespace's versions after ``after``.
BY_KEY_ROWS = 5000


def _version_column(tx: Tx, table: str, ns: str, where: str, params: tuple[str, ...]) -> str:
    """How a changes read names ``version``: plainly (the ``(ns, version)`` index: the rows
    written after ``after``, filtered by key), or as ``+version`` (no index on it: the primary
    key's ``(ns, key)`` range under the prefix, filtered by version) when the prefix holds at
    most :data:`BY_KEY_ROWS` rows. With an old ``after``, a prefix holding few or no keys
    would otherwise be found by reading every row the namespace wrote since (measured: 263 ms
    for an empty answer on 50,000 keys, on the server's event loop, per request)."""
    if not where:
        return "version"
    row = tx.one(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE ns = ?{where} LIMIT ?) AS few",
        (ns, *params, BY_KEY_ROWS + 1),
    )
    return "+version" if row is not None and int(row[0]) <= BY_KEY_ROWS else "version"


def _prefix_where(prefix: str) -> tuple[str, tuple[str, ...]]:
    if not prefix:
        return "", ()
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return " AND key >= ?", (prefix,)
    return " AND key >= ? AND key < ?", (prefix, upper)
