"""The engine's maintenance: clearing and purging namespaces, the idempotency records' bounds
(the rows of long lists left for a later sweep are ``_sqlrows``'s)."""

from __future__ import annotations

from .._types import Usage
from ._sqlbase import IDEMPOTENCY_BUDGET, IDEMPOTENCY_SECONDS, MAX_IDEMPOTENCY_RECORDS, Stats, Tx
from ._sqlread import Reads
from ._sqltext import DAY, LIST


class Maintenance(Reads):
    """Clear, usage, purges and idempotency bounds."""

    def tomb_all(self, tx: Tx, ns: str, now: float) -> None:
        """Tombstones for every row a ``clear`` removes (``_sqlwatch.Watching``)."""

    # -- idempotency records -----------------------------------------------------------------

    def shed_records(
        self,
        tx: Tx,
        ns: str,
        stats: Stats,
        cap: int,
        *,
        keep: str = "",
        count: int = 0,
        size: int = 0,
    ) -> None:
        """Drop the namespace's oldest idempotency records (not ``keep``) until at most
        :data:`MAX_IDEMPOTENCY_RECORDS` (``count``), :meth:`idempotency_budget` bytes
        (``size``) and, with ``cap``, ``stats.bytes <= cap`` hold; their bytes are freed."""
        budget = self.idempotency_budget()

        def over() -> bool:
            return (
                count > MAX_IDEMPOTENCY_RECORDS or size > budget or bool(cap and stats.bytes > cap)
            )

        if not over():
            return
        oldest = tx.all(
            f"SELECT ikey, {self.octets} FROM bw_idempotency WHERE ns = ? AND ikey <> ?"
            " ORDER BY created_at, ikey",
            (ns, keep),
        )
        gone: list[tuple[str, str]] = []
        for old_key, length in oldest:
            if not over():
                break
            gone.append((ns, old_key))
            count, size = count - 1, size - int(length)
            stats.bytes -= int(length)
        if gone:
            tx.many("DELETE FROM bw_idempotency WHERE ns = ? AND ikey = ?", gone)

    def idempotency_budget(self) -> int:
        """Bytes of kept answers per namespace: its byte limit, else a fixed cap."""
        return self.limits.max_namespace_bytes or IDEMPOTENCY_BUDGET

    def forget_key_records(self, tx: Tx, ns: str, keys: set[str], keep: str | None) -> None:
        """Drop the idempotency records that may hold deleted ``keys``' data (not the request's
        own, ``keep``) and free their bytes. Run after the statistics are saved: the update is
        relative and both statements are queued (no round trip on a pipelined backend)."""
        # the scope starts after the 64-digit digest and its space (1-based: character 66)
        marks = ", ".join("?" * (len(keys) + 1))
        where = f"ns = ? AND substr(fingerprint, 66) IN ({marks}) AND ikey <> ?"
        params = (ns, *sorted(keys), "*", keep or "")
        tx.run(
            f"UPDATE bw_namespaces SET bytes = bytes - (SELECT coalesce(sum({self.octets}), 0)"
            f" FROM bw_idempotency WHERE {where}) WHERE ns = ?",
            (*params, ns),
        )
        tx.run(f"DELETE FROM bw_idempotency WHERE {where}", params)

    def forget_idempotency(self, tx: Tx, now: float, limit: int = 100) -> int:
        """Forget records older than :data:`IDEMPOTENCY_SECONDS` in up to ``limit``
        namespaces, freeing their bytes; return how many namespaces were done (call again
        while it returns ``limit``)."""
        rows = tx.all(
            "SELECT DISTINCT ns FROM bw_idempotency"
            f" WHERE created_at < {self._now_sql} - ? ORDER BY ns LIMIT ?",
            (now, IDEMPOTENCY_SECONDS, limit),
        )
        for (ns,) in rows:
            # Namespace lock first, then its records: the order every writer takes them in.
            found = self._lock_existing(tx, ns, now)
            gone = tx.all(
                f"DELETE FROM bw_idempotency WHERE ns = ? AND created_at < {self._now_sql} - ?"
                f" RETURNING {self.octets}",
                (ns, now, IDEMPOTENCY_SECONDS),
            )
            if found is not None:
                stats = found[0]
                stats.bytes -= sum(int(r[0]) for r in gone)
                self.save_namespace(tx, ns, stats)
        return len(rows)

    # -- namespaces --------------------------------------------------------------------------

    def clear(self, tx: Tx, ns: str, now: float) -> int:
        found = self._lock_existing(tx, ns, now)
        if found is None:
            return 0
        stats, now = found
        row = tx.one(
            "SELECT count(*) FROM bw_entries"
            " WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?)",
            (ns, now),
        )
        self.rows.clear(tx, ns)
        if row and row[0]:
            self.tomb_all(tx, ns, now)  # for watchers (``_sqlwatch``)
        tx.run("DELETE FROM bw_entries WHERE ns = ?", (ns,))
        tx.run("DELETE FROM bw_idempotency WHERE ns = ?", (ns,))  # no replay of deleted data
        stats.keys = stats.bytes = 0
        self.save_namespace(tx, ns, stats)
        return int(row[0]) if row else 0

    def usage(self, tx: Tx, ns: str, now: float) -> Usage:
        found = self._lock_existing(tx, ns, now)
        if found is None:  # reads never create rows (issue 13)
            today = int(self.db_now(tx, now) // DAY) if self.db_clock else int(now // DAY)
            return Usage(ns, 0, 0, 0, (today + 1) * DAY, self.limits)
        stats, now = found
        self.purge_namespace(tx, ns, now, stats)
        self.save_namespace(tx, ns, stats)
        return Usage(ns, stats.keys, stats.bytes, stats.writes, (stats.day + 1) * DAY, self.limits)

    def purge_namespace(self, tx: Tx, ns: str, now: float, stats: Stats) -> int:
        """Delete the namespace's expired entries; the caller holds the namespace lock."""
        gone = tx.all(
            "DELETE FROM bw_entries WHERE ns = ? AND expires_at IS NOT NULL AND expires_at <= ?"
            " RETURNING key, kind, bytes, length, tail",
            (ns, now),
        )
        for key, kind, _, length, tail in gone:
            if kind == LIST:
                self.rows.drop(tx, ns, key, int(length), int(tail))
        stats.keys -= len(gone)
        stats.bytes -= sum(int(r[2]) for r in gone)
        return len(gone)

    def expired_namespaces(self, tx: Tx, now: float, limit: int = 100) -> list[str]:
        rows = tx.all(
            "SELECT DISTINCT ns FROM bw_entries WHERE expires_at IS NOT NULL"
            f" AND expires_at <= {self._now_sql} LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]
