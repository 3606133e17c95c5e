"""P12 and P13 (issue 22): a chat history on PostgreSQL, botwire over HTTP against
``PostgresChatMessageHistory`` (``langchain-postgres``) — one add at 1,000 messages, bytes per
message, and 6 processes adding to one session at once; P13e the same adds with no server.
Run through ``pg_reference.py`` (its cluster, reference environment, workers and counters).
"""

from __future__ import annotations

import sys
from typing import Any

from _common import Row, Settings, log, median
from pg_reference import Counters, Disk, add_no_server_side, alternate, ratio, run_worker, sql

__all__ = ["chat_figures"]


def chat_figures(
    settings: Settings, dsn: str, url: str, python: str, counters: dict[str, Counters]
) -> tuple[list[Row], dict[str, Any]]:
    pythons = {"ref": python, "botwire": sys.executable}
    conn = {"ref": {"dsn": dsn}, "botwire": {"url": url}}
    adds = 30 if settings.quick else 100
    one = alternate(
        settings.rounds,
        lambda side: run_worker(
            pythons[side],
            {"side": side, "task": "chat_one", "prefill": 1000, "adds": adds, **conn[side]},
            counters[side],
        ),
    )
    add_no_server_side(dsn, pythons, conn, counters)  # P13e
    many = alternate(
        settings.rounds,
        lambda side: run_worker(
            pythons[side],
            {
                "side": "ref" if side == "ref" else "botwire",
                "task": "chat_concurrent",
                "procs": 6,
                "adds": 50,
                **conn[side],
            },
            counters[side],
        ),
        sides=("ref", "botwire", "embedded"),
    )
    emb_many = many.pop("embedded")
    fill: dict[str, Any] = {}
    n_fill = 300 if settings.quick else 2000

    def chat_fill(side: str) -> dict[str, Any]:
        r = run_worker(
            pythons[side],
            {"side": side, "task": "chat_fill", "messages": n_fill, "sessions": 10, **conn[side]},
            Disk(counters[side], dsn, side),
        )
        if r["messages"] != r["expected"]:
            raise RuntimeError(f"chat fill {side}: {r['messages']} of {r['expected']} messages")
        return r

    for side in ("ref", "botwire"):
        r = chat_fill(side)
        fill[side] = {
            "messages": r["messages"],
            "bytes_per_message": r["bytes"] / r["messages"],
            "durable_bytes_per_message": r["durable_bytes"] / r["messages"],
            "wal_bytes_per_message": r["wal_bytes"] / r["messages"],
        }
        # P12c: what a database that autovacuum keeps grows by. VACUUM makes the space of the
        # rows' dead versions (botwire rewrites a list's entry on each append; the reference
        # only inserts) reusable, as autovacuum does within a minute on a live database; the
        # same fill again is then measured. The first fill's figure (P12b) stays the target's.
        sql(dsn, "VACUUM")
        again = chat_fill(side)
        fill[side]["after_vacuum_bytes_per_message"] = again["bytes"] / again["messages"]
        log(
            f"    P12b {side:8} {r['messages']} messages: "
            f"{fill[side]['bytes_per_message']:,.0f} B each "
            f"({fill[side]['durable_bytes_per_message']:,.0f} B without 24-h records), "
            f"WAL {fill[side]['wal_bytes_per_message']:,.0f} B each; P12c after VACUUM "
            f"{fill[side]['after_vacuum_bytes_per_message']:,.0f} B each"
        )
    lost = []
    for r in emb_many:
        if r["messages"] != r["expected"]:
            lost.append(f"without a server: {r['messages']} of {r['expected']} messages")
    for side in one:
        for r in one[side] + many[side]:
            r.pop("add_ms", None)
            if r["messages"] != r["expected"]:
                lost.append(f"{side}: {r['messages']} of {r['expected']} messages")
        log(
            f"    P12 {side:8} add at 1,000: {median([r['median_add_ms'] for r in one[side]]):.2f}"
            f" ms; P13 6×50: {median([r['adds_per_s'] for r in many[side]]):,.0f} adds/s"
        )
    add = {s: median([r["median_add_ms"] for r in one[s]]) for s in one}
    rate = {s: median([r["adds_per_s"] for r in many[s]]) for s in many}
    conc = ratio(many, "adds_per_s")
    per_msg = {s: fill[s]["bytes_per_message"] for s in fill}
    per_msg_durable = {s: fill[s]["durable_bytes_per_message"] for s in fill}
    wal_msg = {s: fill[s]["wal_bytes_per_message"] for s in fill}
    kept = {s: fill[s]["after_vacuum_bytes_per_message"] for s in fill}
    rows = [
        Row(
            "P12",
            "chat `add_messages` of one message at 1,000 messages (time)",
            ratio(one, "median_add_ms"),
            "×",
            f"`PostgresChatMessageHistory` = {add['ref']:.2f} ms",
            "—",
            None,
            note=f"botwire {add['botwire']:.2f} ms",
            details={"one": one, "concurrent": many, "fill": fill},
        ),
        Row(
            "P12b",
            f"bytes on disk per chat message ({n_fill:,} one-message adds over 10 sessions)",
            per_msg["botwire"] / per_msg["ref"],
            "×",
            f"`PostgresChatMessageHistory` = {per_msg['ref']:,.0f} B",
            "≤ 1.2×",
            per_msg["botwire"] / per_msg["ref"] <= 1.2,
            note=f"botwire {per_msg['botwire']:,.0f} B; without the 24-h idempotency records "
            f"{per_msg_durable['botwire']:,.0f} B "
            f"({per_msg_durable['botwire'] / per_msg_durable['ref']:.2f}×); WAL per message "
            f"{wal_msg['botwire']:,.0f} B vs {wal_msg['ref']:,.0f} B",
        ),
        Row(
            "P12c",
            "bytes on disk per chat message, the same fill again after `VACUUM` (context)",
            kept["botwire"] / kept["ref"],
            "×",
            f"`PostgresChatMessageHistory` = {kept['ref']:,.0f} B",
            "—",
            None,
            note=f"botwire {kept['botwire']:,.0f} B: what a database autovacuum keeps grows by "
            "(the dead versions of lists' entries reused)",
        ),
        Row(
            "P13",
            "6 processes × 50 adds to one session, throughput",
            conc,
            "×",
            f"`PostgresChatMessageHistory` = {rate['ref']:,.0f} adds/s",
            "≥ 0.5×",
            conc >= 0.5 and not lost,
            note=f"botwire {rate['botwire']:,.0f} adds/s"
            + (f"; LOST MESSAGES: {'; '.join(lost)}" if lost else "; no message lost"),
        ),
        Row(
            "P13e",
            "the same adds with no server: each process on `Memory(ns, store=PostgresStore(url))` "
            "(context: one namespace's writes then take its lock one transaction at a time, "
            "where a server groups them)",
            ratio({"ref": many["ref"], "botwire": emb_many}, "adds_per_s"),
            "×",
            f"`PostgresChatMessageHistory` = {rate['ref']:,.0f} adds/s",
            "—",
            None,
            note=f"{median([r['adds_per_s'] for r in emb_many]):,.0f} adds/s; PostgreSQL CPU "
            f"{median([r['db_cpu_s'] / r['adds'] for r in emb_many]) * 1e6:,.0f} µs per add "
            f"against {median([r['db_cpu_s'] / r['adds'] for r in many['ref']]) * 1e6:,.0f}",
            details={"runs": emb_many},
        ),
    ]
    return rows, {"one": one, "concurrent": many, "concurrent_no_server": emb_many, "fill": fill}
