"""The SQL text the engine sends, and the constants it is built from (no I/O, no state).

Every statement text here is constant per engine (placeholders ``?``), so a backend may cache
or prepare per text (``botwire_server.storage._pg_common.pg_sql``).

Schema (both engines)::

    bw_entries(ns, key, kind, value, version, created_at, updated_at, expires_at,
               bytes, length, head, tail)        -- kind 0: JSON text in value; 1: list
    bw_items(ns, key, seq, value, bytes)         -- list items, seq in [head, tail); keyed
                                                 -- (ns, key, seq) on SQLite, by list_hash
                                                 -- and seq on PostgreSQL (schema 7)
    bw_namespaces(ns, keys, bytes, day, writes,  -- statistics and the per-namespace lock,
                  p_ttl, p_max_len, p_max_idle,  -- its retention policy (NULL: the default),
                  written_at,                    -- its last write (max_idle)
                  records)                       -- idempotency records kept (NULL: count them)
    bw_idempotency(ns, ikey, fingerprint, created_at, response)
                                                 -- fingerprint: "<sha256> <key or *>"
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DB_LOCK_NOW_SQL",
    "DB_NOW_SQL",
    "ENTRY_COLS",
    "PG_OCTETS",
    "RECORDS_AGE_INDEX",
    "SQLITE_OCTETS",
    "idempotency_query",
    "list_hash",
    "load_query",
    "prefix_filter",
    "prefix_upper_bound",
    "read_sql",
    "records_migration",
    "recount_sql",
]

# (value as JSON text, version, created_at, updated_at, expires_at)
JSONEntry = tuple[str, int, float, float, float | None]
VALUE, LIST = 0, 1  # bw_entries.kind
DAY = 86400.0
ENTRY_COLS = "kind, value, version, created_at, updated_at, expires_at, bytes, length, head, tail"
_LOAD_SQL = f"SELECT {ENTRY_COLS} FROM bw_entries WHERE ns = ? AND key = ?"

SQLITE_OCTETS = "length(CAST(response AS BLOB))"
PG_OCTETS = "octet_length(response)"

# One savepoint per op of a non-atomic batch (issued through Tx's savepoint hooks).
SAVEPOINT_SQL = "SAVEPOINT bw_op"
ROLLBACK_SQL = "ROLLBACK TO SAVEPOINT bw_op"
RELEASE_SQL = "RELEASE SAVEPOINT bw_op"
# One savepoint per caller of a group of concurrent writes in one transaction (_sqlitegroup,
# the server's _pg_group and _pg_write's lazy ones).
GROUP_SAVEPOINT_SQL = "SAVEPOINT bw_req"
GROUP_ROLLBACK_SQL = "ROLLBACK TO SAVEPOINT bw_req"
GROUP_RELEASE_SQL = "RELEASE SAVEPOINT bw_req"

# The database clock (PostgreSQL), for every replica to agree on "now": ``?`` binds an offset
# (0, or a testing clock's) instead of a time. Reads use the statement's start; a write takes
# its time once, right after its namespace lock is granted (``clock_timestamp()`` in the
# lock's RETURNING), so a namespace's times follow its commit order whatever the replicas say.
DB_NOW_SQL = "(extract(epoch from statement_timestamp())::float8 + ?)"
DB_LOCK_NOW_SQL = "(extract(epoch from clock_timestamp())::float8 + ?)"

#: The namespace lock (and statistics) of a write: with the database's time, or the caller's.
#: An engine with a ``version_sql`` adds it to the ``RETURNING`` (``EngineBase.plan_lock``).
LOCK_DB_CLOCK_SQL = (
    "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes, records)"
    f" VALUES (?, 0, 0, floor({DB_LOCK_NOW_SQL} / 86400)::bigint, 0, 0)"
    " ON CONFLICT (ns) DO UPDATE SET ns = excluded.ns"
    f" RETURNING keys, bytes, day, writes, records, p_ttl, p_max_len, {DB_LOCK_NOW_SQL}"
)
LOCK_SQL = (
    "INSERT INTO bw_namespaces (ns, keys, bytes, day, writes, records)"
    " VALUES (?, 0, 0, ?, 0, 0)"
    " ON CONFLICT (ns) DO UPDATE SET ns = excluded.ns"
    " RETURNING keys, bytes, day, writes, records, p_ttl, p_max_len"
)


def policy_migration(real: str, integer: str, *, if_not_exists: str = "") -> tuple[str, ...]:
    """The statements adding the retention policy's columns (issue 18) to ``bw_namespaces``.
    ``real``/``integer``: the engine's types; ``if_not_exists``: PostgreSQL's ``IF NOT EXISTS``
    (SQLite has none: its store adds only the columns missing), so a migration run again (a
    file whose schema number was set back) does not fail."""
    return tuple(
        f"ALTER TABLE bw_namespaces ADD COLUMN {if_not_exists}{name} {kind}"
        for name, kind in (
            ("p_ttl", real),
            ("p_max_len", integer),
            ("p_max_idle", real),
            ("written_at", real),
        )
    )


STORE_SQL = (
    f"INSERT INTO bw_entries (ns, key, {ENTRY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (ns, key) DO UPDATE SET kind = excluded.kind, value = excluded.value,"
    " version = excluded.version, updated_at = excluded.updated_at,"
    " expires_at = excluded.expires_at, bytes = excluded.bytes,"
    " length = excluded.length, head = excluded.head, tail = excluded.tail"
)
INSERT_ITEM_SQL = "INSERT INTO bw_items (ns, key, seq, value, bytes) VALUES (?, ?, ?, ?, ?)"
#: a namespace's statistics stored (``plan_save``): by housekeeping and reads, and by a write
#: (its idle age restarts); both set every column they name, whatever the row held
SAVE_SQL = (
    "UPDATE bw_namespaces SET keys = ?, bytes = ?, day = ?, writes = ?, records = ? WHERE ns = ?"
)
SAVE_WRITTEN_SQL = (
    "UPDATE bw_namespaces SET keys = ?, bytes = ?, day = ?, writes = ?, records = ?,"
    " written_at = ? WHERE ns = ?"
)
TOMBSTONE_SQL = (
    "INSERT INTO bw_tombstones (ns, key, version, at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version, at = excluded.at"
)
UNTOMB_SQL = "DELETE FROM bw_tombstones WHERE ns = ? AND key = ?"
#: What the engine declares of its statements for a backend that queues them (PostgreSQL's
#: event-loop writes, ``AsyncPgTx.send``): each statement of ``OVERWRITES`` sets every column
#: a write sets of the row its parameters name (the slice; an entry's ``created_at`` is the
#: stored row's, which the plan passes too), so an earlier one of the same row may be left out
#: when only statements of ``BLIND_WRITES`` (which read no such row) run between them.
OVERWRITES: dict[str, slice] = {
    STORE_SQL: slice(0, 2),  # ns, key
    SAVE_SQL: slice(-1, None),  # ns
    SAVE_WRITTEN_SQL: slice(-1, None),
}
BLIND_WRITES = frozenset({INSERT_ITEM_SQL, TOMBSTONE_SQL, UNTOMB_SQL})


def recount_sql(octets: str) -> str:
    """The statement that sets every namespace's bytes to its entries' plus its kept answers'
    (a one-time recount on upgrade: records kept before they were counted, or counted in
    characters, issue 13)."""
    return (
        "UPDATE bw_namespaces SET bytes = (SELECT coalesce(sum(e.bytes), 0) FROM bw_entries e"
        " WHERE e.ns = bw_namespaces.ns) + (SELECT coalesce(sum("
        + octets.replace("response", "i.response")
        + "), 0) FROM bw_idempotency i WHERE i.ns = bw_namespaces.ns)"
    )


READ_COLS = "e.kind, e.value, e.version, e.created_at, e.updated_at, e.expires_at, i.value"


def list_hash(ns: str, key: str) -> str:
    """PostgreSQL: the 64-bit hash of a list's name that ``bw_items_list`` indexes with ``seq``
    (schema 7, issue 22). Its entry is 28 bytes where ``(ns, key, seq)``'s was 84 or more, so a
    list's items take a third of the index. Not unique: every statement that uses it also
    compares ``ns`` and ``key``, so lists whose hashes collide (``chr(1)`` keeps ``("a", "bc")``
    and ``("ab", "c")`` apart) cost a row read and dropped, never each other's items."""
    return f"hashtextextended({ns} || chr(1) || {key}, 0)"


def _items_of(item_filter: str, hashed: bool = False) -> str:
    of_entry = f"e.kind = 1 AND i.ns = e.ns AND i.key = e.key{item_filter}"
    if not hashed:
        return f" LEFT JOIN bw_items i ON {of_entry}"
    # PostgreSQL: the items of each entry read, a list's alone, by the list's own index. As a
    # plain join, once ANALYZE had seen one long list fill bw_items, the planner read every
    # entry's items by a scan of the whole table (a value's GET beside a 100,000-item list:
    # 0.6 -> 16 ms; get_many of 200 values: 32 ms -> 2.7 s). OFFSET 0 keeps the subquery from
    # being pulled back into a join; ``e.kind = 1`` then skips it for a value.
    # The list's name is compared with IS NOT DISTINCT FROM (both NOT NULL: the same test),
    # which no index serves: with ``i.ns = e.ns`` the planner could AND the list's own index
    # with ``bw_items_ns``, every item of the namespace (``tail(20)`` of a 100,000-item list
    # read 100,000 index entries for its 20 rows: 1.9 ms; ``clear`` alone needs that index).
    match = f"{list_hash('i.ns', 'i.key')} = {list_hash('e.ns', 'e.key')}"
    of_list = f"e.kind = 1 AND (i.ns, i.key) IS NOT DISTINCT FROM (e.ns, e.key){item_filter}"
    return (
        " LEFT JOIN LATERAL (SELECT i.value, i.seq FROM bw_items i"
        f" WHERE {match} AND {of_list} OFFSET 0) i ON true"
    )


def live_sql(now_sql: str) -> str:
    """The test that the entry ``e`` has not expired at ``now_sql`` (every read's)."""
    return f"(e.expires_at IS NULL OR e.expires_at > {now_sql})"


def read_sql(item_filter: str, now_sql: str = "?", hashed: bool = False) -> str:
    """A read of one entry and, for a list, its items joined in order (one statement);
    ``hashed``: the items found by :func:`list_hash` (PostgreSQL)."""
    return (
        f"SELECT {READ_COLS} FROM bw_entries e{_items_of(item_filter, hashed)}"
        f" WHERE e.ns = ? AND e.key = ? AND {live_sql(now_sql)} ORDER BY i.seq"
    )


def _entry_of(now_sql: str) -> str:
    """Each pair ``q`` of a statement over several keys joined to its live entry ``e`` by a
    primary-key look-up, whatever the statistics say: as a plain join, on a table that grew
    since PostgreSQL last analyzed it, the planner hashed the pairs and read the whole table
    (``tests/postgres/test_budgeted_reads``). A ``LATERAL`` subquery kept apart (``OFFSET
    0``) can only be looked up pair by pair."""
    return (
        " CROSS JOIN LATERAL (SELECT * FROM bw_entries e WHERE e.ns = q.ns AND e.key = q.key"
        f" AND {live_sql(now_sql)} OFFSET 0) e"
    )


def read_many_sql(now_sql: str = "?", hashed: bool = False) -> str:
    """:func:`read_sql` (whole values) of several keys in one statement, PostgreSQL only: the
    parameters are an array of namespaces, an array of keys and the time; each row starts with
    the 1-based position of its key in the arrays (``unnest ... WITH ORDINALITY``)."""
    return (
        f"SELECT q.i, {READ_COLS}"
        " FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS q(ns, key, i)"
        f"{_entry_of(now_sql)}{_items_of(HEAD_FILTER, hashed)} ORDER BY q.i, i.seq"
    )


def read_many_within_sql(now_sql: str = "?", hashed: bool = False) -> str:
    """:func:`read_many_sql` behind a response budget, in one statement, PostgreSQL only.

    The bytes the keys would answer are summed first, as ``Reads.plan_stored_bytes`` counts
    them (a key as often as it is named); the entries are read only when the sum is at most the
    budget. The sum is a one-row subquery and the read a ``LATERAL`` one kept apart (``OFFSET
    0``), so the budget's test is a gate PostgreSQL evaluates once, before it reads any entry:
    a batch over the budget costs its primary-key look-ups of sizes, never its values.

    Parameters: the namespaces, the keys (two arrays), the time (twice), the budget. Each row
    is :func:`read_many_sql`'s row, then the item's ``seq`` and the sum; when nothing is read
    (over the budget, or no key found) there is one row, all ``NULL`` but the sum."""
    return (
        "WITH q AS (SELECT * FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS q(ns, key, i)),"
        f" t AS (SELECT coalesce(sum(e.bytes), 0) AS total FROM q{_entry_of(now_sql)})"
        f" SELECT r.*, t.total FROM t LEFT JOIN LATERAL (SELECT q.i, {READ_COLS}, i.seq FROM q"
        f"{_entry_of(now_sql)}{_items_of(HEAD_FILTER, hashed)} WHERE t.total <= ? OFFSET 0) r"
        " ON true ORDER BY r.i, r.seq"
    )


# Engine.read_query's two statements (the text of each is constant: backends cache per text).
# Rows below the entry's head are a trimmed or deleted list's leftovers, not yet swept
# (DeferredRows.sweep): never read. One lower bound per statement, so the index range starts there.
HEAD_FILTER = " AND i.seq >= e.head"
TAIL_FILTER = " AND i.seq >= CASE WHEN e.head > e.tail - ? THEN e.head ELSE e.tail - ? END"


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (UTF-8 order)."""
    chars = list(prefix)
    while chars:
        c = ord(chars.pop()) + 1
        if c == 0xD800:
            c = 0xE000  # surrogates are not UTF-8; skip them
        if c <= 0x10FFFF:
            return "".join(chars) + chr(c)
    return None


def prefix_filter(column: str, prefix: str, after: str | None) -> tuple[str, list[Any]]:
    """The ``WHERE`` conditions (each `` AND ...``) and parameters of a listing by ``column``:
    values starting with ``prefix`` (a range, so the index serves it: no ``LIKE`` and its
    escaping) and greater than ``after`` (a page's cursor). Empty ``prefix``/``after``: none."""
    sql, params = "", []
    if prefix:
        sql += f" AND {column} >= ?"
        params.append(prefix)
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            sql += f" AND {column} < ?"
            params.append(upper)
    if after:
        sql += f" AND {column} > ?"
        params.append(after)
    return sql, params


def idempotency_query(ns: str, ikey: str) -> tuple[str, tuple[Any, ...]]:
    """The one statement that looks up a request's idempotency record, a primary-key probe:
    (fingerprint, response), no row when there is none. How many records the namespace keeps
    comes with its statistics (``bw_namespaces.records``), not from counting them."""
    return (
        "SELECT fingerprint, response FROM bw_idempotency WHERE ns = ? AND ikey = ?",
        (ns, ikey),
    )


def records_migration(integer: str, *, if_not_exists: str = "") -> str:
    """The statement adding ``bw_namespaces.records`` (issue 22): the idempotency records a
    namespace keeps, kept with its statistics so a keyed write counts nothing; NULL (every row
    after the upgrade) means unknown, counted once by the next keyed write."""
    return f"ALTER TABLE bw_namespaces ADD COLUMN {if_not_exists}records {integer}"


#: A namespace's idempotency records oldest first, for the write that drops the oldest at the
#: 1,000th (``Maintenance.plan_drop_oldest``). Without it PostgreSQL walked the store-wide
#: ``bw_idempotency_age`` index past every other namespace's records (and the dead ones): 150 µs
#: per statement at 1,000 records in one namespace, and growing with the store.
RECORDS_AGE_INDEX = (
    "CREATE INDEX IF NOT EXISTS bw_idempotency_ns_age ON bw_idempotency (ns, created_at)"
)


#: The namespaces with a retention policy of their own (``max_idle``, ``max_list_len``), which
#: housekeeping looks through (``Maintenance.idle_namespaces``, ``long_lists``) every 512 writes
#: and every round: without them each look was a scan of every namespace's row (28 and 19 ms at
#: 500,000 namespaces on PostgreSQL). Keyed by ``ns`` and filtered on a column that only a policy
#: change writes, so a write's statistics update stays a HOT update on PostgreSQL.
POLICY_INDEXES = (
    "CREATE INDEX IF NOT EXISTS bw_namespaces_idle_policy ON bw_namespaces (ns)"
    " WHERE p_max_idle IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS bw_namespaces_len_policy ON bw_namespaces (ns)"
    " WHERE p_max_len IS NOT NULL",
)


#: Both engines drop the index ``(ns, updated_at, version, key)`` that the compatibility listing
#: read until issue 22: the listing reads ``bw_entries_version`` (the change feed's) instead, in
#: commit order, and a write of an entry no longer adds an entry to a fourth index (on
#: PostgreSQL an update that changes an indexed column adds one to every index it changed).
RECENT_INDEX_DROP = "DROP INDEX IF EXISTS bw_entries_recent"


def load_query(ns: str, key: str) -> tuple[str, tuple[Any, ...]]:
    """The statement with which a write loads an entry's row (``ENTRY_COLS``) before changing
    it: a pipelining backend may send it ahead, with the namespace lock."""
    return _LOAD_SQL, (ns, key)
