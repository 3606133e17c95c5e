"""Where a chat message's bytes on PostgreSQL go, relation by relation, and what the narrower key
of list items saves (issue 22, P12b's evidence).

Two measurements on a throwaway cluster:

1. **Relations.** A real ``botwire-server`` takes ``--messages`` one-message ``add_messages``
   (``BotWireChatHistory``) spread over ``--sessions`` sessions, written in turn as P12b's fill
   does; the growth of each relation is printed per message, with the updates of each table and
   how many of them were HOT (an update that changes an indexed column is not, and leaves a new
   entry in every index of its table until ``VACUUM``).
2. **The items' key.** The same rows (the same namespace, list keys, sequence numbers and stored
   values) are inserted, in the same order, into two copies of ``bw_items``: one keyed as before
   PostgreSQL schema 7, ``PRIMARY KEY (ns, key, seq)``, and one with schema 7's indexes: a
   non-unique one on a 64-bit hash of the list's name and ``seq`` (16 bytes of key) and one on
   ``ns`` alone (deduplicated: a few bytes per row) for the statements that address a whole
   namespace. The plan of a list's range read on the second copy is printed too.

    uv run python benchmarks/pg_chat_bytes.py [--messages 2000] [--sessions 10]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Settings, _as_url, log, server
from pg_reference import durable_postgres

from botwire.store._sqltext import list_hash

SIZES = (
    "SELECT c.relname, pg_relation_size(c.oid), coalesce(t.n_tup_upd, 0),"
    " coalesce(t.n_tup_hot_upd, 0) FROM pg_class c"
    " LEFT JOIN pg_stat_user_tables t ON t.relid = c.oid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't')"
)
TEXT = 'TEXT COLLATE "C" NOT NULL'
PROTOTYPE = (
    f"CREATE TABLE keyed_pkey (ns {TEXT}, key {TEXT}, seq bigint NOT NULL, value text NOT NULL,"
    " bytes bigint NOT NULL, PRIMARY KEY (ns, key, seq))",
    f"CREATE TABLE keyed_narrow (ns {TEXT}, key {TEXT}, seq bigint NOT NULL,"
    " value text NOT NULL, bytes bigint NOT NULL)",
    f"CREATE INDEX keyed_narrow_list ON keyed_narrow ({list_hash('ns', 'key')}, seq)",
    "CREATE INDEX keyed_narrow_ns ON keyed_narrow (ns)",
)
RANGE_READ = (
    "EXPLAIN SELECT value FROM keyed_narrow"
    f" WHERE {list_hash('ns', 'key')} = {list_hash('%s', '%s')}"
    " AND ns = %s AND key = %s AND seq >= 5 AND seq < 25 ORDER BY seq"
)


def _sizes(conn: Any) -> dict[str, tuple[int, int, int]]:
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(SIZES)}


def measure(messages: int, sessions: int, postgres_url: str | None = None) -> list[str]:
    """The report's lines; ``postgres_url``: a fresh database to use instead of a private
    durable cluster."""
    import psycopg
    from langchain_core.messages import AIMessage, HumanMessage

    from botwire_langchain import BotWireChatHistory

    out: list[str] = []
    settings = Settings.__new__(Settings)
    settings.postgres_url = postgres_url
    with durable_postgres(settings) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        assert dsn is not None
        with server(database=_as_url(dsn)) as srv:
            histories = [
                BotWireChatHistory(str(uuid.uuid4()), url=srv.url, namespace="chat")
                for _ in range(sessions)
            ]
            histories[0].add_messages([HumanMessage("warm-up")])
            before = _sizes(conn)
            for i in range(messages):
                text = f"message {i}: a chat turn of about one hundred characters, as people write."
                message = HumanMessage(text) if i % 2 == 0 else AIMessage(text)
                histories[i % sessions].add_messages([message])
            after = _sizes(conn)
        out.append(f"relations, {messages:,} messages over {sessions} sessions:")
        out.append("| relation | B per message | updates | of them HOT |")
        out.append("|---|---:|---:|---:|")
        total = 0
        for name in sorted(after):
            grown = after[name][0] - before.get(name, (0, 0, 0))[0]
            updates = after[name][1] - before.get(name, (0, 0, 0))[1]
            hot = after[name][2] - before.get(name, (0, 0, 0))[2]
            total += grown
            if grown or updates:
                out.append(f"| `{name}` | {grown / messages:,.1f} | {updates:,} | {hot:,} |")
        out.append(f"| all | **{total / messages:,.1f}** | | |")

        rows = conn.execute(
            "SELECT ns, key, seq, value, bytes FROM bw_items WHERE ns = 'chat'"
        ).fetchall()
        # the order they were written in: turn by turn over the sessions
        rows.sort(key=lambda r: (r[2], r[1]))
        for statement in PROTOTYPE:
            conn.execute(statement)
        with conn.cursor() as cur:
            for table in ("keyed_pkey", "keyed_narrow"):
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)", rows)
        sizes = _sizes(conn)
        out.append("")
        out.append(f"the items' key, the same {len(rows):,} rows in the order written:")
        out.append("| relation | B per item |")
        out.append("|---|---:|")
        for name in ("keyed_pkey", "keyed_pkey_pkey", "keyed_narrow"):
            out.append(f"| `{name}` | {sizes[name][0] / len(rows):,.1f} |")
        for name in ("keyed_narrow_list", "keyed_narrow_ns"):
            out.append(f"| `{name}` | {sizes[name][0] / len(rows):,.1f} |")
        ns, key = rows[-1][0], rows[-1][1]
        plan = conn.execute(RANGE_READ, (ns, key, ns, key)).fetchall()
        out.append("")
        out.append("a range read of one list on the narrow copy:")
        out.extend(f"    {line[0]}" for line in plan)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=10)
    args = ap.parse_args()
    for line in measure(args.messages, args.sessions):
        log(line)


if __name__ == "__main__":
    main()
