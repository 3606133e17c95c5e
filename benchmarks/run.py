"""botwire benchmarks: every figure is a ratio against a baseline measured in the same run.

    uv run python benchmarks/run.py [--quick] [--only P1,P3] [--publish]

Prints a markdown table, writes ``benchmarks/results/results-<UTC time>.json`` (and
``latest.json``) and PNG plots to ``benchmarks/results/``. ``--publish`` also copies the plots
and the JSON to ``docs/benchmarks/`` for ``docs/benchmarks.md``. Loopback only; every process
started is stopped. ``--quick`` (fewer rounds, shorter loads, 100,000 keys for P5) takes a few
minutes on a 2-core machine.

- P1 ``import botwire`` over a bare interpreter; baselines ``python -c pass``, ``import httpx``,
  PyPI botwire 0.2.1 in its own venv.
- P2 warm ``Memory.get`` over keep-alive; baseline ``http.client`` GET of the no-op route.
- P3 server GET/SET/APPEND req/s, 1 worker, SQLite and PostgreSQL; baseline the no-op route of
  the same process under the same load generator; webdis + Redis for context.
- P4 one chat turn as the history grows (bytes, time); baseline GET the list + PUT it back.
- P5 GET latency with 1,000,000 keys in 10,000 namespaces; baseline the same with 1,000 keys.
- P6 a cold invocation (fresh process, import, get + set); baseline ``python -c pass``.
- P7 LangGraph put / get_tuple round trips at 1,000 checkpoints; baseline the same at 10.
- P8 ``watch`` wake-up after a write; baseline polling ``entry()`` every 100 ms, same writes.
- P9 queue put + claim + ack items/s, one client; baseline ``set`` + ``get`` + ``delete`` of the
  same items (``bench_queue.py``).

PostgreSQL against the packages a user would pick instead, and the write path's concurrency
(issue 22; ``benchmarks/pg_reference.py``): one throwaway cluster with ``fsync`` and
``synchronous_commit`` on; the reference packages in a separate environment the harness creates
with ``uv`` (cached under ``$XDG_CACHE_HOME/botwire-bench/``, never in the project's lock).

- P10 LangGraph step, 10-node graph, ``durability="sync"``: ``BotWireSaver`` over HTTP ->
  ``botwire-server`` -> PostgreSQL; baseline ``PostgresSaver`` (pool). P10b CPU per invoke.
  P10s the same step through a SQLite server, P10f through a bare route doing no botwire work
  (the floor of any HTTP server), P10e with no server (the store in the client; context).
- P11 bytes on disk per checkpoint after N checkpoints (600 ``--quick``, 12,000 full); baseline
  ``PostgresSaver``'s. P11b WAL bytes per invoke.
- P12 chat ``add_messages`` of one message at 1,000 messages; baseline
  ``PostgresChatMessageHistory``. P13 6 processes x 50 adds to one session, throughput
  (P13e the same with no server).
- P14 SET throughput of 8 writers to ONE namespace; baseline 8 writers to 8 namespaces.
- P15 two replicas on one PostgreSQL: server CPU per SET and aggregate throughput; baseline one
  replica under the same writers.
- P16 the same two replicas through PgBouncer in transaction mode (``benchmarks/pg_bouncer.py``):
  server CPU per SET and aggregate throughput; baselines two direct replicas and one replica.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Row, Settings, dump, log

RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks"


def p7_langgraph(settings: Settings) -> list[Row]:
    import langgraph_roundtrips

    sizes = [10, 1000]
    figures = langgraph_roundtrips.measure(sizes)
    small, big = figures[10], figures[1000]
    rows = []
    names = {
        "step": "`put_writes` + `put` (a step: the writes ride with the put)",
        "get_tuple_latest": "`get_tuple_latest` (the saver that wrote the thread)",
        "get_tuple_latest_cold": "`get_tuple_latest` (another process's saver)",
    }
    ops = ("put", "get_tuple_latest", "get_tuple_latest_cold", "get_tuple_by_id", "put_writes")
    for op in (*ops, "step", "list_limit_10"):
        ratio = big[op] / small[op]
        rows.append(
            Row(
                "P7",
                f"LangGraph {names.get(op, f'`{op}`')} round trips, 1,000 vs 10 checkpoints",
                ratio,
                "×",
                f"{small[op]} round trip(s) at 10 checkpoints",
                "constant (1.0×)",
                ratio == 1.0,
                note=f"{big[op]} at 1,000",
                details={"round_trips": figures} if op == "put" else {},
            )
        )
    return rows


def p10_p15(settings: Settings, which: set[str]) -> list[Row]:
    import pg_reference

    return pg_reference.p10_p15(settings, which)


def sections() -> dict[str, Any]:
    import bench_client
    import bench_queue
    import bench_server
    import bench_startup
    import bench_watch
    import pg_bouncer

    def startup(settings: Settings, which: set[str]) -> list[Row]:
        rows: list[Row] = []
        with bench_startup.old_botwire() as old:
            if "P1" in which:
                rows += bench_startup.p1_import(settings, old)
            if "P6" in which:
                rows += bench_startup.p6_cold(settings, old)
        return rows

    return {
        "P1+P6": (startup, {"P1", "P6"}),
        "P2": (lambda s, w: bench_client.p2_warm_get(s), {"P2"}),
        "P3": (lambda s, w: bench_server.p3_rps(s), {"P3"}),
        "P4": (lambda s, w: bench_client.p4_chat_turn(s), {"P4"}),
        "P5": (lambda s, w: bench_client.p5_big_store(s), {"P5"}),
        "P7": (lambda s, w: p7_langgraph(s), {"P7"}),
        "P8": (lambda s, w: bench_watch.p8_watch(s), {"P8"}),
        "P9": (lambda s, w: bench_queue.p9_queue(s), {"P9"}),
        "P10-P15": (p10_p15, {"P10", "P11", "P12", "P13", "P14", "P15"}),
        "P16": (lambda s, w: pg_bouncer.p16_pgbouncer(s), {"P16"}),
    }


def fmt(row: Row) -> str:
    value = f"{row.value:,.2f}" if abs(row.value) < 100 else f"{row.value:,.0f}"
    unit = {"×": "×", "ms": " ms", "× fewer": "× fewer"}.get(row.unit, " " + row.unit)
    met = {True: "✅ met", False: "❌ missed", None: "context"}[row.met]
    return (
        f"| {row.id} | {row.figure} | **{value}{unit}** | {row.baseline} | {row.target} | "
        f"{met} | {row.note} |"
    )


def table(rows: list[Row]) -> str:
    out = [
        "| | figure | result | baseline (same run) | target | | note |",
        "|---|---|---:|---|---|---|---|",
    ]
    out += [fmt(r) for r in rows]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": load,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter loads (< 5 min)")
    ap.add_argument("--rounds", type=int, default=None, help="repeated rounds per figure")
    ap.add_argument("--only", default="", help="comma-separated ids, e.g. P1,P3")
    ap.add_argument(
        "--postgres-url",
        default=None,
        help="a PostgreSQL database to use (default: a throwaway private cluster)",
    )
    ap.add_argument(
        "--publish", action="store_true", help="also copy the plots and JSON to docs/benchmarks/"
    )
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="measure nothing: print, plot (and --publish) an earlier results JSON",
    )
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        return republish(args.from_json, args.publish)
    settings = Settings(
        quick=args.quick,
        rounds=args.rounds or (3 if args.quick else 5),
        out=RESULTS,
        postgres_url=args.postgres_url,
    )
    wanted = {x.strip().upper() for x in args.only.split(",") if x.strip()}
    rows: list[Row] = []
    timings: dict[str, float] = {}
    started = time.monotonic()
    for name, (fn, ids) in sections().items():
        which = ids & wanted if wanted else ids
        if not which:
            continue
        log(f"== {name} ({time.monotonic() - started:.0f} s)")
        t = time.monotonic()
        try:
            rows += fn(settings, which)
        except Exception as exc:  # one broken section must not hide the others
            import traceback

            traceback.print_exc()
            rows.append(
                Row(
                    name,
                    f"{name} failed: {type(exc).__name__}: {exc}",
                    float("nan"),
                    "",
                    "—",
                    "—",
                    False,
                )
            )
        timings[name] = time.monotonic() - t
    rows.sort(key=lambda r: _number(r.id))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "quick": args.quick,
        "rounds": settings.rounds,
        "machine": machine(),
        "seconds": time.monotonic() - started,
        "section_seconds": timings,
        "rows": [r.as_dict() for r in rows],
    }
    json_path = RESULTS / f"results-{stamp}.json"
    dump(json_path, result)
    dump(RESULTS / "latest.json", result)
    try:
        import plots

        pngs = plots.draw(result, RESULTS)
    except Exception as exc:
        log(f"plots failed: {exc}")
        pngs = []
    if args.publish:
        publish(rows, result, pngs)
    print(
        f"\n{'quick' if args.quick else 'full'} run, {settings.rounds} rounds, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average at the end "
        f"{machine()['loadavg_at_end']}, {result['seconds']:.0f} s\n"
    )
    print(table(rows))
    print(
        f"\nJSON: {json_path.relative_to(ROOT)}; plots: "
        + ", ".join(str(p.relative_to(ROOT)) for p in pngs)
    )
    return 0


START, END = "<!-- results:start -->", "<!-- results:end -->"


def publish(rows: list[Row], result: dict[str, Any], pngs: list[Path]) -> None:
    """Copy the plots and a trimmed JSON to ``docs/benchmarks/`` and put the table in the page."""
    DOCS.mkdir(parents=True, exist_ok=True)
    for png in pngs:
        shutil.copy(png, DOCS / png.name)
    dump(
        DOCS / "results.json",
        {
            **result,
            "rows": [
                {k: v for k, v in r.items() if k != "details"} | {"details": _slim(r["details"])}
                for r in result["rows"]
            ],
        },
    )
    publish_table(rows, result)


def publish_table(rows: list[Row], result: dict[str, Any]) -> None:
    """Put the table and the machine line between the markers of ``docs/benchmarks.md``."""
    page = ROOT / "docs" / "benchmarks.md"
    text = page.read_text()
    if START not in text or END not in text:
        log(f"{page} has no {START} ... {END} markers; table not published")
        return
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["loadavg_at_end"] or ())
    body = (
        f"{table(rows)}\n\n{'Quick' if result['quick'] else 'Full'} run of {m['utc']}: "
        f"{result['rounds']} rounds, Python {m['python']}, {m['cpus']} CPUs, "
        f"{m['platform']}, load average at the end {load}, {result['seconds']:.0f} s."
    )
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def republish(path: Path, publish_it: bool) -> int:
    import json

    import plots

    result = json.loads(path.read_text())
    rows = [Row(**r) for r in result["rows"]]
    pngs = plots.draw(result, RESULTS)
    if publish_it:
        publish(rows, result, pngs)
    print(table(rows))
    return 0


def _number(row_id: str) -> int:
    """The figure's number: ``P3w`` -> 3, ``P10b`` -> 10 (a stable sort keeps the order within)."""
    digits = ""
    for c in row_id[1:]:
        if not c.isdigit():
            break
        digits += c
    return int(digits) if digits else 99


def _slim(details: dict[str, Any]) -> dict[str, Any]:
    """Drop the raw per-call sample lists from the published JSON (they are long)."""
    return {k: v for k, v in details.items() if k not in ("growth_us", "samples", "samples_us")}


if __name__ == "__main__":
    raise SystemExit(main())
