"""The engine's maintenance: clearing and purging namespaces, the idempotency records' bounds
(the rows of long lists left for a later sweep are ``_sqlrows``'s)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._codec import decode
from .._errors import InvalidArgument
from .._policy import check_policy
from .._types import Policy, Usage
from ._sqlbase import (
    IDEMPOTENCY_BUDGET,
    IDEMPOTENCY_SECONDS,
    MAX_IDEMPOTENCY_RECORDS,
    Stats,
    Tx,
    utf8_len,
)
from ._sqlplan import Plan
from ._sqlread import Reads
from ._sqltext import DAY, LIST, idempotency_query

#: The fingerprint of a clear's idempotency record (a batch's is a SHA-256 of its ops): a key
#: reused across a clear and a batch is refused either way.
CLEAR_FINGERPRINT = "clear"

if TYPE_CHECKING:
    from ._sqlctx import OldestRecords

DROP_RECORD_SQL = "DELETE FROM bw_idempotency WHERE ns = ? AND ikey = ?"
#: Which of a namespace's idempotency records are the oldest (both ways of dropping them agree)
OLDEST_FIRST = "ORDER BY created_at, ikey"

#: Records read at a time when the oldest must make way for bytes (not for their number).
SHED_PAGE = 16

#: Policy fields (``Policy``'s, in order) → their ``bw_namespaces`` columns.
POLICY_COLUMNS = {"default_ttl": "p_ttl", "max_list_len": "p_max_len", "max_idle": "p_max_idle"}
POLICY_FIELDS = tuple(POLICY_COLUMNS)


class Maintenance(Reads):
    """Clear, usage, purges and idempotency bounds."""

    def tomb_all(self, tx: Tx, ns: str, now: float) -> None:
        """Tombstones for every row a ``clear`` removes (``_sqlwatch.Watching``)."""

    # -- idempotency records -----------------------------------------------------------------

    def plan_records(self, ns: str, stats: Stats) -> Plan[int]:
        """How many idempotency records the namespace keeps: its statistics' count, or (NULL:
        after the upgrade that added it, after the daily purge, or left by an older replica)
        counted once here; the write that adds a record stores the new count with the rest."""
        if stats.records is not None:
            return stats.records
        row = yield ("one", "SELECT count(*) FROM bw_idempotency WHERE ns = ?", (ns,))
        stats.records = int(row[0]) if row else 0
        return stats.records

    def plan_shed(
        self,
        ns: str,
        stats: Stats,
        cap: int,
        *,
        keep: str = "",
        count: int = 0,
        size: int = 0,
    ) -> Plan[int]:
        """Drop the namespace's oldest idempotency records (not ``keep``) until at most
        :data:`MAX_IDEMPOTENCY_RECORDS` (``count``), :meth:`idempotency_budget` bytes
        (``size``) and, with ``cap``, ``stats.bytes <= cap`` hold; their bytes are freed.
        Return how many records are left.

        Only the oldest few are read (``LIMIT``): a namespace at its 1,000 records drops one
        per keyed write, and reading all of them each time cost 0.65 ms per write on PostgreSQL
        (0.9 -> 1.55 ms per append over HTTP, issue 22)."""
        budget = self.idempotency_budget()

        def over() -> bool:
            return (
                count > MAX_IDEMPOTENCY_RECORDS or size > budget or bool(cap and stats.bytes > cap)
            )

        while over():
            excess = count - MAX_IDEMPOTENCY_RECORDS
            limit = excess if excess > 0 else SHED_PAGE
            oldest = yield ("all", self._oldest_records("?"), (ns, keep, limit))
            gone: list[tuple[str, str]] = []
            for old_key, length in oldest:
                if not over():
                    break
                gone.append((ns, old_key))
                count, size = count - 1, size - int(length)
                stats.bytes -= int(length)
            if not gone:
                break  # none left but ``keep``
            yield ("many", DROP_RECORD_SQL, gone)
        return count

    def plan_drop_oldest(self, ns: str, n: int, keep: str) -> Plan[None]:
        """Drop the namespace's ``n`` oldest idempotency records (not ``keep``) and free their
        bytes, relative to the saved statistics: both statements are queued (no round trip on a
        pipelined backend) and each reads only the oldest few (``LIMIT``).

        ``n`` is 1 but after a count an older replica left wrong; then a literal ``LIMIT 1``:
        PostgreSQL's generic plan of a prepared ``LIMIT $n`` guesses 100 rows and scans the
        whole namespace (0.30 ms at 1,000 records) where the literal probes the index."""
        limit, params = ("1", ()) if n == 1 else ("?", (n,))
        oldest = self._oldest_records(limit)
        yield (
            "run",
            f"UPDATE bw_namespaces SET bytes = bytes - (SELECT coalesce(sum(size), 0) FROM"
            f" ({oldest}) o) WHERE ns = ?",
            (ns, keep, *params, ns),
        )
        yield (
            "run",
            f"DELETE FROM bw_idempotency WHERE ns = ? AND ikey IN (SELECT ikey FROM ({oldest}) o)",
            (ns, ns, keep, *params),
        )

    def oldest_query(self, ns: str, limit: int) -> tuple[str, tuple[Any, ...]]:
        """The namespace's ``limit`` oldest idempotency records (key, bytes, time), as a group
        transaction reads them ahead with its lock (``OldestRecords``); a literal ``LIMIT``,
        as :meth:`plan_drop_oldest`'s."""
        return (
            f"SELECT ikey, {self.octets}, created_at FROM bw_idempotency WHERE ns = ?"
            f" {OLDEST_FIRST} LIMIT {int(limit)}",
            (ns,),
        )

    def plan_drop_known(
        self, ns: str, stats: Stats, old: OldestRecords, n: int, keep: str
    ) -> Plan[bool]:
        """Drop the namespace's ``n`` oldest records (not ``keep``) by their keys, from those
        read ahead (``old``), their bytes taken off ``stats``; ``False`` (nothing done) when
        what was read ahead cannot tell which they are."""
        if old.rows is None:
            if not old.ahead:
                return False
            old.rows = [
                (str(k), int(size), float(at))
                for k, size, at in (yield ("all", *self.oldest_query(ns, old.ahead)))
            ]
        picked: list[tuple[str, int]] = []
        for ikey, size, at in old.rows:
            if ikey == keep or ikey in old.dropped:
                continue
            if at >= old.floor or len(picked) == n:
                break  # as new as a record this transaction added: not known to be older
            picked.append((ikey, size))
        if len(picked) < n:
            return False
        yield ("many", DROP_RECORD_SQL, [(ns, k) for k, _ in picked])
        for ikey, size in picked:
            old.dropped.add(ikey)
            stats.bytes -= size
        return True

    def _oldest_records(self, limit: str) -> str:
        """The namespace's (``?``) oldest ``limit`` records but one (``?``): key and bytes
        (``size``), through ``bw_idempotency_ns_age``."""
        return (
            f"SELECT ikey, {self.octets} AS size FROM bw_idempotency WHERE ns = ? AND ikey <> ?"
            f" {OLDEST_FIRST} LIMIT {limit}"
        )

    def idempotency_budget(self) -> int:
        """Bytes of kept answers per namespace: its byte limit, else a fixed cap."""
        return self.limits.max_namespace_bytes or IDEMPOTENCY_BUDGET

    def plan_forget_records(self, ns: str, keys: set[str], keep: str | None) -> Plan[None]:
        """Drop the idempotency records that may hold deleted ``keys``' data (not the request's
        own, ``keep``) and free their bytes. Run after the statistics are saved: the update is
        relative and both statements are queued (no round trip on a pipelined backend)."""
        # the scope starts after the 64-digit digest and its space (1-based: character 66)
        marks = ", ".join("?" * (len(keys) + 1))
        where = f"ns = ? AND substr(fingerprint, 66) IN ({marks}) AND ikey <> ?"
        params = (ns, *sorted(keys), "*", keep or "")
        yield (
            "run",
            f"UPDATE bw_namespaces SET (bytes, records) = (SELECT bytes - coalesce(sum("
            f"{self.octets}), 0), records - count(*) FROM bw_idempotency WHERE {where})"
            " WHERE ns = ?",
            (*params, ns),
        )
        yield ("run", f"DELETE FROM bw_idempotency WHERE {where}", params)

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
                # counted afresh by the next keyed write: a count left wrong by an older
                # replica during a rolling upgrade lasts a day at most
                stats.records = None
                self.save_namespace(tx, ns, stats)
        return len(rows)

    # -- namespaces --------------------------------------------------------------------------

    def clear(self, tx: Tx, ns: str, now: float, idempotency_key: str | None = None) -> int:
        """Delete every key of ``ns`` and its idempotency records; return how many keys were
        live. With ``idempotency_key`` (the HTTP client's, the same on every retry) the clear
        keeps a record of its own answer, so a retry after a lost answer reports the count
        the clear itself deleted, not the 0 it would find."""
        found = self._lock_existing(tx, ns, now)
        if found is None:
            return 0
        stats, now = found
        if idempotency_key is not None:
            done = tx.one(*idempotency_query(ns, idempotency_key))
            if done is not None:
                if (done[0] or "").split(" ", 1)[0] != CLEAR_FINGERPRINT:
                    raise InvalidArgument(
                        f"botwire: Idempotency-Key {idempotency_key!r} was already used in "
                        f"namespace {ns!r} for a different request; use a new key for every "
                        "new request.",
                        namespace=ns,
                    )
                return int(decode(done[1])["deleted"])
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
        stats.keys = stats.bytes = stats.records = 0
        deleted = int(row[0]) if row else 0
        if idempotency_key is not None:  # its answer holds no data: it may outlive the clear
            response = f'{{"deleted":{deleted}}}'
            tx.run(
                "INSERT INTO bw_idempotency (ns, ikey, fingerprint, created_at, response)"
                " VALUES (?, ?, ?, ?, ?)",
                (ns, idempotency_key, CLEAR_FINGERPRINT + " ", now, response),
            )
            stats.records, stats.bytes = 1, utf8_len(response)
        self.save_namespace(tx, ns, stats)
        return deleted

    def usage(self, tx: Tx, ns: str, now: float) -> Usage:
        found = self._lock_existing(tx, ns, now)
        if found is None:  # reads never create rows (issue 13)
            today = int(self.db_now(tx, now) // DAY) if self.db_clock else int(now // DAY)
            return Usage(ns, 0, 0, 0, (today + 1) * DAY, self.limits, self.policy)
        stats, now = found
        self.purge_namespace(tx, ns, now, stats)
        self.save_namespace(tx, ns, stats)
        return Usage(
            ns,
            stats.keys,
            stats.bytes,
            stats.writes,
            (stats.day + 1) * DAY,
            self.limits,
            self.policy_of((stats.ttl, stats.max_len, stats.max_idle)),
        )

    # -- retention policies (issue 18) -------------------------------------------------------

    def get_policy(self, tx: Tx, ns: str) -> Policy:
        """The policy in force: the namespace's own fields (``p_*``) over :attr:`policy`."""
        row = tx.one("SELECT p_ttl, p_max_len, p_max_idle FROM bw_namespaces WHERE ns = ?", (ns,))
        return self.policy_of(row if row is not None else (None, None, None))

    def policy_of(self, own: tuple[Any, ...]) -> Policy:
        """The policy in force for a namespace whose own fields are ``own`` (``p_*``)."""
        default = self.policy
        ttl, max_len, idle = (
            self.effective(mine, theirs)
            for mine, theirs in zip(
                own, (default.default_ttl, default.max_list_len, default.max_idle), strict=True
            )
        )
        overrides = tuple(
            name for name, mine in zip(POLICY_FIELDS, own, strict=True) if mine is not None
        )
        return Policy(  # seconds are floats, whichever column type gave them back
            float(ttl) if ttl else None,
            int(max_len) if max_len else None,
            float(idle) if idle else None,
            overrides,
        )

    def set_policy(
        self, tx: Tx, ns: str, now: float, changes: dict[str, float | int | None]
    ) -> Policy:
        """Change the namespace's own fields (``changes`` checked by ``check_policy``: ``None``
        follows the default, ``0`` none) under its lock (creating its row); the new policy."""
        checked = check_policy(ns, changes)
        self.lock_namespace_at(tx, ns, now)
        columns = ", ".join(f"{POLICY_COLUMNS[name]} = ?" for name in checked)
        tx.run(f"UPDATE bw_namespaces SET {columns} WHERE ns = ?", (*checked.values(), ns))
        return self.get_policy(tx, ns)

    def idle_namespaces(self, tx: Tx, now: float, limit: int = 100) -> list[str]:
        """Namespaces holding keys whose last write is older than their ``max_idle``."""
        idle = self.policy.max_idle or 0.0
        # without a store-wide default only namespaces with a policy of their own are looked
        # at, through their index (``POLICY_INDEXES``), not every namespace's row
        scope = "" if idle else " AND p_max_idle IS NOT NULL"
        rows = tx.all(
            "SELECT ns FROM bw_namespaces WHERE keys > 0 AND written_at IS NOT NULL"
            f" AND coalesce(p_max_idle, ?) > 0{scope}"
            f" AND written_at <= {self._now_sql} - coalesce(p_max_idle, ?) LIMIT ?",
            (idle, now, idle, limit),
        )
        return [r[0] for r in rows]

    def clear_idle(self, tx: Tx, ns: str, now: float) -> int:
        """Clear ``ns`` if it is still idle once locked (a write may have come since it was
        found); return the keys cleared. Its policy stays."""
        found = self._lock_existing(tx, ns, now)
        if found is None:
            return 0
        now = found[1]
        idle = self.policy.max_idle or 0.0
        row = tx.one(
            "SELECT 1 FROM bw_namespaces WHERE ns = ? AND written_at IS NOT NULL"
            " AND coalesce(p_max_idle, ?) > 0 AND written_at <= ? - coalesce(p_max_idle, ?)",
            (ns, idle, now, idle),
        )
        return self.clear(tx, ns, now) if row is not None else 0

    def long_lists(self, tx: Tx, limit: int = 100) -> list[tuple[str, str]]:
        """Lists longer than their namespace's ``max_list_len`` (it was lowered, or set on a
        namespace that held longer lists): ``(ns, key)`` pairs for :meth:`Engine.trim_list`."""
        default = self.policy.max_list_len or 0
        # without a store-wide default only namespaces with a policy of their own are scanned
        scope = "" if default else " AND n.p_max_len IS NOT NULL"
        rows = tx.all(
            "SELECT e.ns, e.key FROM bw_namespaces n JOIN bw_entries e ON e.ns = n.ns"
            f" WHERE e.kind = 1 AND coalesce(n.p_max_len, ?) > 0{scope}"
            " AND e.length > coalesce(n.p_max_len, ?) LIMIT ?",
            (default, default, limit),
        )
        return [(r[0], r[1]) for r in rows]

    def purge_namespace(self, tx: Tx, ns: str, now: float, stats: Stats) -> int:
        """:meth:`plan_purge` run on ``tx``: how many entries it deleted."""
        return len(self.run_plan(tx, self.plan_purge(ns, now, stats)))

    def plan_purge(self, ns: str, now: float, stats: Stats) -> Plan[list[str]]:
        """Delete the namespace's expired entries; the caller holds the namespace lock. The
        keys deleted (a write that purged must not trust a row of theirs read before)."""
        gone = yield (
            "all",
            "DELETE FROM bw_entries WHERE ns = ? AND expires_at IS NOT NULL AND expires_at <= ?"
            " RETURNING key, kind, bytes, length, tail",
            (ns, now),
        )
        for key, kind, _, length, tail in gone:
            if kind == LIST:
                yield from self.rows.plan_drop(ns, key, int(length), int(tail))
        stats.keys -= len(gone)
        stats.bytes -= sum(int(r[2]) for r in gone)
        return [str(r[0]) for r in gone]

    def expired_namespaces(self, tx: Tx, now: float, limit: int = 100) -> list[str]:
        rows = tx.all(
            "SELECT DISTINCT ns FROM bw_entries WHERE expires_at IS NOT NULL"
            f" AND expires_at <= {self._now_sql} LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]
