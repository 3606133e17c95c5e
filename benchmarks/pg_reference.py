"""P10-P15: botwire on PostgreSQL against the packages a LangGraph or LangChain user would pick
instead, and the write path's concurrency (issue 22).

One throwaway PostgreSQL cluster with ``fsync`` and ``synchronous_commit`` on (as in production;
``full_page_writes`` on too), one database shared by both sides (their tables do not collide).
The reference packages (``langgraph-checkpoint-postgres``, ``langchain-postgres``, psycopg and
py-spy) live in a separate virtual environment this module creates with ``uv`` and caches under
``$XDG_CACHE_HOME/botwire-bench/`` (``~/.cache`` by default) — never in the project's lock. It
uses the project's own interpreter (no Python download) and pins ``langgraph``,
``langgraph-checkpoint``, ``langchain-core`` and ``psycopg`` to the project's versions so both
sides run the same graph runtime. Each side runs in a subprocess (``benchmarks/_pg_worker.py``);
rounds alternate the sides, and every ratio is the median of the per-round ratios.

- P10  LangGraph step time, 10-node chain, ``durability="sync"``: ``PostgresSaver`` (pool) vs
       ``BotWireSaver`` over HTTP -> ``botwire-server`` -> PostgreSQL; CPU per invoke (client +
       server + database) for context; P10s the same step through a SQLite server, the
       HTTP hop and the server without PostgreSQL (context); P10f the same step posted once to
       a bare route with two PostgreSQL round trips and no botwire work (``p10_floor.py``: the
       floor of any HTTP server; context); P10e the same step with no server,
       ``BotWireSaver`` on ``PostgresStore`` in the client's process (context).
- P11  bytes on disk per checkpoint after N checkpoints (``pg_total_relation_size`` of each
       side's tables, before and after) and WAL bytes per invoke (``pg_current_wal_lsn``);
       P11c the same without botwire's 24-hour idempotency records (the bytes that stay).
- P12  chat ``add_messages`` of one message to a session of 1,000 messages:
       ``PostgresChatMessageHistory`` vs ``BotWireChatHistory`` over HTTP. P12b bytes on
       disk (and WAL) per chat message.
- P13  6 processes x 50 adds to ONE session, throughput (and every message arrives); P13e the
       same adds with no server, each process on ``PostgresStore`` (context).
- P14  8 concurrent writers to ONE namespace vs 8 writers to 8 namespaces, SET throughput
       through one server.
- P15  two replicas on one PostgreSQL: server CPU per SET and aggregate throughput, against one
       replica under the same load.
       (P12 and P13 live in ``benchmarks/pg_chat.py``, P14 and P15 in
       ``benchmarks/pg_writes.py``.)

    uv run python benchmarks/run.py --only P10,P11,P12,P13,P14,P15 [--quick]
    uv run python benchmarks/pg_reference.py [--quick]          # the same, on its own
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import p10_floor
from _common import ROOT, Row, Settings, log, median, server

__all__ = ["durable_postgres", "p10_p15", "refenv_python"]

WORKER = Path(__file__).resolve().parent / "_pg_worker.py"
TICK = os.sysconf("SC_CLK_TCK")
NODES = 10  # nodes of the graph (as in _pg_worker.py)

# -- the separate benchmark environment ------------------------------------------------------


def _pins() -> list[str]:
    """What the reference environment installs: the references, unpinned (the index's newest),
    and the shared runtime pinned to the project's versions."""
    same = ["langgraph", "langgraph-checkpoint", "langchain-core", "psycopg", "psycopg-pool"]
    return [
        *(f"{name}=={version(name)}" for name in same),
        f"psycopg-binary=={version('psycopg')}",
        "langgraph-checkpoint-postgres",
        "langchain-postgres",
        "py-spy",
    ]


def refenv_python() -> str:
    """The interpreter of the reference environment, created on first use (``uv venv`` with the
    project's own Python, then ``uv pip install``); cached by the hash of its requirements."""
    pins = _pins()
    base = sys._base_executable  # type: ignore[attr-defined]  # the project's Python, not a download
    digest = hashlib.sha256(json.dumps([base, *pins]).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env = cache / "botwire-bench" / f"refenv-{digest}"
    python = env / "bin" / "python"
    if (env / ".complete").exists():
        return str(python)
    log(f"  creating the reference environment {env} ({', '.join(pins)})")
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    clean["UV_PYTHON_DOWNLOADS"] = "never"
    subprocess.run(
        ["uv", "venv", "--quiet", "--clear", "--python", base, str(env)], check=True, env=clean
    )
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", str(python), *pins], check=True, env=clean
    )
    (env / ".complete").write_text("\n".join(pins) + "\n")
    return str(python)


def refenv_versions(python: str) -> dict[str, str]:
    code = (
        "import json; from importlib.metadata import version as v; print(json.dumps({n: v(n) "
        "for n in ('langgraph-checkpoint-postgres', 'langchain-postgres', 'langgraph', "
        "'psycopg', 'py-spy')}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# -- PostgreSQL, durable ---------------------------------------------------------------------


@contextlib.contextmanager
def durable_postgres(settings: Settings) -> Iterator[str | None]:
    """The DSN of a fresh database on a private cluster with fsync, synchronous_commit and
    full_page_writes on (``--postgres-url``: that database, as it is configured)."""
    if settings.postgres_url:
        yield settings.postgres_url
        return
    from support.postgres import PostgresServer

    pg = PostgresServer.start_private(durable=True)
    try:
        # The test clusters run with fsync (and full_page_writes) off for speed; a benchmark
        # against the reference must pay what production pays. Command-line settings win over
        # ALTER SYSTEM, so restart with them switched on.
        data = os.path.join(pg._dir or "", "data")
        pg._pg("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop")
        pg._options = pg._options.replace("fsync=off", "fsync=on").replace(
            "full_page_writes=off", "full_page_writes=on"
        )
        pg.restart()
        yield pg.new_database("botwire_pgref")
    finally:
        pg.stop()


def sql(dsn: str, query: str, *args: Any) -> Any:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, args or None)
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _settings_line(dsn: str) -> str:
    return (
        ", ".join(
            f"{n}={sql(dsn, f'SHOW {n}')}"
            for n in ("fsync", "synchronous_commit", "full_page_writes")
        )
        + f", PostgreSQL {sql(dsn, 'SHOW server_version')}"
    )


REF_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "chat_history")
#: botwire's replay records of recent writes (``Idempotency-Key``): at most 1,000 per namespace
#: and forgotten after 24 h, so they are reported apart from the bytes that stay ("durable")
TRANSIENT = ("bw_idempotency",)


def table_bytes(dsn: str, side: str, *, durable: bool = False) -> int:
    """Bytes on disk (heap + indexes + TOAST) of one side's tables; ``durable``: without the
    24-hour idempotency records."""
    args: tuple[Any, ...]
    if side == "botwire":
        cond = "relname LIKE %s AND NOT relname = ANY(%s)"
        args = ("bw\\_%", list(TRANSIENT) if durable else ["-"])
    else:
        cond, args = "relname = ANY(%s)", (list(REF_TABLES),)
    return int(
        sql(
            dsn,
            "SELECT COALESCE(sum(pg_total_relation_size(relid)), 0) FROM pg_stat_user_tables"
            f" WHERE {cond}",
            *args,
        )
    )


def wal_lsn(dsn: str) -> int:
    return int(sql(dsn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))


# -- CPU counters ----------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) of a live process."""
    s = _stat(pid)
    return (int(s[11]) + int(s[12])) / TICK


def postgres_cpu(postmaster: int) -> float:
    """Seconds of CPU of a whole cluster: the postmaster, its reaped children (backends that
    exited) and its live children."""
    total = 0
    for entry in os.listdir("/proc"):  # live children first: one reaped meanwhile then counts
        if entry.isdigit():  # twice (a few ticks too many) rather than not at all
            with contextlib.suppress(OSError, IndexError):
                c = _stat(int(entry))
                if int(c[1]) == postmaster:
                    total += int(c[11]) + int(c[12])
    s = _stat(postmaster)
    return (total + sum(int(x) for x in s[11:15])) / TICK


def postmaster_pid(dsn: str) -> int | None:
    """The cluster's postmaster (the parent of our backend) when it runs on this machine, read
    while the backend still lives (the connection is open): a backend that had already exited
    made a P10b of "nan" once."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            return int(_stat(int(row[0]))[1])
    except (OSError, ValueError, psycopg.Error):
        return None


class Counters:
    """CPU seconds of the servers and the database between :meth:`start` and :meth:`stop`."""

    def __init__(self, servers: list[int], postmaster: int | None) -> None:
        self.servers, self.postmaster = servers, postmaster

    def read(self) -> tuple[float, float]:
        srv = sum(proc_cpu(p) for p in self.servers)
        db = postgres_cpu(self.postmaster) if self.postmaster else float("nan")
        return srv, db

    def start(self) -> None:
        self._t0 = self.read()

    def stop(self) -> dict[str, float]:
        srv, db = self.read()
        return {"server_cpu_s": srv - self._t0[0], "db_cpu_s": db - self._t0[1]}


class Disk(Counters):
    """:class:`Counters` that also read one side's table bytes and the WAL position."""

    def __init__(self, inner: Counters, dsn: str, side: str) -> None:
        super().__init__(inner.servers, inner.postmaster)
        self.dsn, self.side = dsn, side

    def start(self) -> None:
        super().start()
        self._disk0 = (
            table_bytes(self.dsn, self.side),
            wal_lsn(self.dsn),
            table_bytes(self.dsn, self.side, durable=True),
        )

    def stop(self) -> dict[str, float]:
        out = super().stop()
        out["bytes"] = table_bytes(self.dsn, self.side) - self._disk0[0]
        out["wal_bytes"] = wal_lsn(self.dsn) - self._disk0[1]
        out["durable_bytes"] = table_bytes(self.dsn, self.side, durable=True) - self._disk0[2]
        return out


def run_worker(python: str, cfg: dict[str, Any], counters: Counters) -> dict[str, Any]:
    """Run one side's task; the counters cover exactly its measured part."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    p = subprocess.Popen(
        [python, str(WORKER), json.dumps(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stdin is not None and p.stdout is not None
    try:
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"worker {cfg['side']}/{cfg['task']} failed before the start")
        counters.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        line = p.stdout.readline()
        cpu = counters.stop()
        if p.wait(120) != 0 or not line:
            raise RuntimeError(f"worker {cfg['side']}/{cfg['task']} exited with {p.returncode}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out: dict[str, Any] = json.loads(line)
    out.update(cpu)
    return out


# -- the figures -----------------------------------------------------------------------------


def alternate(
    rounds: int, fn: Any, sides: tuple[str, ...] = ("ref", "botwire")
) -> dict[str, list[dict[str, Any]]]:
    """``fn(side)`` for each side, once per round, their order reversed every other round."""
    out: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            out[side].append(fn(side))
    return out


def add_no_server_side(
    dsn: str, pythons: dict[str, str], conn: dict[str, Any], counters: dict[str, Counters]
) -> None:
    """The side ``"embedded"`` (P10e, P13e): no server, each worker process running the
    server's PostgreSQL store itself; only the database's CPU is counted beside its own."""
    pythons["embedded"], conn["embedded"] = sys.executable, {"dsn": dsn, "embedded": True}
    counters["embedded"] = Counters([], counters["ref"].postmaster)


def ratio(runs: dict[str, list[dict[str, Any]]], key: str) -> float:
    return median([b[key] / r[key] for r, b in zip(runs["ref"], runs["botwire"], strict=True)])


def langgraph_figures(
    settings: Settings, dsn: str, url: str, python: str, counters: dict[str, Counters]
) -> tuple[list[Row], dict[str, Any]]:
    pythons = {"ref": python, "botwire": sys.executable}
    conn = {"ref": {"dsn": dsn}, "botwire": {"url": url}}
    target = 600 if settings.quick else 12_000  # checkpoints for the size figure
    fill: dict[str, Any] = {}
    for side in ("ref", "botwire"):
        invokes = -(-target // (NODES + 1))
        # Sizes and WAL are read when the worker is ready, so the reference's table creation
        # and each side's warm-up invoke are not in them.
        disk = Disk(counters[side], dsn, side)
        r = run_worker(
            pythons[side],
            {"side": side, "task": "graph", "invokes": invokes, "threads": 20, **conn[side]},
            disk,
        )
        fill[side] = {
            "checkpoints": r["checkpoints"],
            "invokes": invokes,
            "bytes": r["bytes"],
            "bytes_per_checkpoint": r["bytes"] / r["checkpoints"],
            "durable_bytes_per_checkpoint": r["durable_bytes"] / r["checkpoints"],
            "wal_bytes_per_invoke": r["wal_bytes"] / invokes,
            "wal_bytes_per_checkpoint": r["wal_bytes"] / r["checkpoints"],
            "median_invoke_ms": r["median_invoke_ms"],
        }
        log(
            f"    P11 {side:8} {r['checkpoints']} checkpoints: "
            f"{fill[side]['bytes_per_checkpoint']:,.0f} B each "
            f"({fill[side]['durable_bytes_per_checkpoint']:,.0f} B without 24-h records), "
            f"WAL {fill[side]['wal_bytes_per_invoke']:,.0f} B per invoke, "
            f"{fill[side]['wal_bytes_per_checkpoint']:,.0f} B per checkpoint"
        )
    invokes = 20 if settings.quick else 60
    # P10s: the same graph through a SQLite server, side by side: what the HTTP hop and the
    # server cost without PostgreSQL (the rest of P10's distance is the PostgreSQL path)
    # P10f: the same graph posting each step once to a bare route that makes two PostgreSQL
    # round trips and no botwire work (p10_floor.py): the floor of any HTTP server
    with (
        tempfile.TemporaryDirectory(prefix="botwire-p10s-") as tmp,
        server(database=Path(tmp) / "p10s.db") as lite,
        p10_floor.floor_server(dsn, 2) as floor,
    ):
        pythons["sqlite"], conn["sqlite"] = sys.executable, {"url": lite.url}
        counters["sqlite"] = Counters([lite.proc.pid], None)
        add_no_server_side(dsn, pythons, conn, counters)  # P10e

        def one_side(side: str) -> dict[str, Any]:
            if side == "floor":
                return p10_floor.drive_once(floor, invokes, per_step=True)
            cfg = {"task": "graph", "invokes": invokes, "threads": 10, **conn[side]}
            cfg["side"] = "ref" if side == "ref" else "botwire"
            return run_worker(pythons[side], cfg, counters[side])

        runs = alternate(
            settings.rounds, one_side, sides=("ref", "botwire", "sqlite", "embedded", "floor")
        )
    floor_runs = runs.pop("floor")
    floor_step = median([r["step_ms"] for r in floor_runs])
    lite_runs = runs.pop("sqlite")
    lite_step = median([r["step_ms"] for r in lite_runs])
    emb_runs = runs.pop("embedded")
    emb_step = median([r["step_ms"] for r in emb_runs])
    emb_cpu = median([(r["client_cpu_s"] + r["db_cpu_s"]) * 1000 / invokes for r in emb_runs])
    for side, rs in runs.items():
        for r in rs:
            r["cpu_ms_per_invoke"] = (
                (r["client_cpu_s"] + r["server_cpu_s"] + r["db_cpu_s"]) * 1000 / invokes
            )
            r.pop("invoke_ms")
        split = ", ".join(
            f"{part} {median([r[f'{part}_cpu_s'] for r in rs]) * 1000 / invokes:.1f}"
            for part in ("client", "server", "db")
        )
        log(
            f"    P10 {side:8} step {median([r['step_ms'] for r in rs]):.2f} ms, "
            f"CPU per invoke {median([r['cpu_ms_per_invoke'] for r in rs]):.1f} ms ({split})"
        )
    step = {s: median([r["step_ms"] for r in runs[s]]) for s in runs}
    cpu = {s: median([r["cpu_ms_per_invoke"] for r in runs[s]]) for s in runs}
    step_ratio = ratio(runs, "step_ms")
    size = {s: fill[s]["bytes_per_checkpoint"] for s in fill}
    durable = {s: fill[s]["durable_bytes_per_checkpoint"] for s in fill}
    wal = {s: fill[s]["wal_bytes_per_invoke"] for s in fill}
    wal_cp = {s: fill[s]["wal_bytes_per_checkpoint"] for s in fill}
    n = fill["botwire"]["checkpoints"]

    def context_step(row_id: str, figure: str, side: list[dict[str, Any]], note: str) -> Row:
        """A context row of P10's rounds: ``side``'s step against the reference's."""
        value = ratio({"ref": runs["ref"], "botwire": side}, "step_ms")
        baseline = f"`PostgresSaver` (pool) = {step['ref']:.2f} ms per step"
        return Row(row_id, figure, value, "×", baseline, "—", None, note, {"runs": side})

    rows = [
        Row(
            "P10",
            'LangGraph step, 10-node graph, `durability="sync"`, botwire over HTTP → PostgreSQL',
            step_ratio,
            "×",
            f"`PostgresSaver` (pool) = {step['ref']:.2f} ms per step",
            "≤ 1.5×",
            step_ratio <= 1.5,
            note=f"{step['botwire']:.2f} ms per step; {invokes} invokes × {settings.rounds} rounds",
            details={"runs": runs, "fill": fill},
        ),
        context_step(
            "P10s",
            "the same step, botwire over HTTP → SQLite (context: the HTTP hop and the server "
            "without PostgreSQL)",
            lite_runs,
            f"{lite_step:.2f} ms per step; the PostgreSQL path adds "
            f"{step['botwire'] - lite_step:.2f} ms",
        ),
        context_step(
            "P10f",
            "the same step posted once to a bare ASGI route that makes two PostgreSQL round "
            "trips and no botwire work (context: the floor of any HTTP server, "
            "`benchmarks/p10_floor.py --per-step`)",
            floor_runs,
            f"{floor_step:.2f} ms per step; botwire's P10 adds "
            f"{step['botwire'] - floor_step:.2f} ms",
        ),
        context_step(
            "P10e",
            "the same step with no server: `BotWireSaver` on "
            "`Memory(ns, store=PostgresStore(url))` in the client's process, a supported "
            'deployment (docs/langgraph.md, "Without a server"; context: the engine and its '
            "statements without the HTTP hop)",
            emb_runs,
            f"{emb_step:.2f} ms per step; CPU per invoke {emb_cpu:.1f} ms (client with the "
            "store, and the database)",
        ),
        Row(
            "P10b",
            "CPU per invoke, client + server + database (context)",
            cpu["botwire"] / cpu["ref"],
            "×",
            f"`PostgresSaver` = {cpu['ref']:.1f} ms",
            "—",
            None,
            note=f"botwire {cpu['botwire']:.1f} ms",
        ),
        Row(
            "P11",
            f"bytes on disk per checkpoint, after {n:,} checkpoints",
            size["botwire"] / size["ref"],
            "×",
            f"`PostgresSaver` = {size['ref']:,.0f} B",
            "≤ 1.2×",
            size["botwire"] / size["ref"] <= 1.2,
            note=f"botwire {size['botwire']:,.0f} B (tables + indexes + TOAST, with the 24-h "
            "idempotency records)",
        ),
        Row(
            "P11c",
            "bytes on disk per checkpoint that stay (without the 24-h idempotency records)",
            durable["botwire"] / durable["ref"],
            "×",
            f"`PostgresSaver` = {durable['ref']:,.0f} B",
            "—",
            None,
            note=f"botwire {durable['botwire']:,.0f} B; idempotency records "
            f"{size['botwire'] - durable['botwire']:,.0f} B per checkpoint (at most 1,000 per "
            "namespace, for 24 h)",
        ),
        Row(
            "P11b",
            "WAL bytes per invoke (10-node graph)",
            wal["botwire"] / wal["ref"],
            "×",
            f"`PostgresSaver` = {wal['ref']:,.0f} B",
            "—",
            None,
            note=f"botwire {wal['botwire']:,.0f} B; per checkpoint (a `put` and its "
            f"`put_writes`) {wal_cp['botwire']:,.0f} B vs {wal_cp['ref']:,.0f} B",
        ),
    ]
    return rows, {"fill": fill, "runs": runs}


# -- entry point -----------------------------------------------------------------------------


def p10_p15(settings: Settings, which: set[str]) -> list[Row]:
    """The figures of ``which`` (ids P10-P15) against one durable cluster."""
    python = refenv_python() if which & {"P10", "P11", "P12", "P13"} else ""
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    with durable_postgres(settings) as dsn:
        assert dsn is not None
        extra["postgres"] = _settings_line(dsn)
        log(f"    PostgreSQL: {extra['postgres']}")
        if python:
            extra["reference"] = refenv_versions(python)
            log(f"    reference environment: {extra['reference']}")
            with server(database=dsn) as srv:
                postmaster = postmaster_pid(dsn)
                counters = {
                    "ref": Counters([], postmaster),
                    "botwire": Counters([srv.proc.pid], postmaster),
                }
                if which & {"P10", "P11"}:
                    r, d = langgraph_figures(settings, dsn, srv.url, python, counters)
                    rows += r
                    extra["langgraph"] = d
                if which & {"P12", "P13"}:
                    from pg_chat import chat_figures

                    r, d = chat_figures(settings, dsn, srv.url, python, counters)
                    rows += r
                    extra["chat"] = d
        if which & {"P14", "P15"}:
            from pg_writes import write_figures

            r, d = write_figures(settings, dsn)
            rows += r
            extra["writes"] = d
    rows = [r for r in rows if r.id.rstrip("bcefs") in which]
    if rows:
        rows[0].details = {**rows[0].details, **extra}
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--only", default="P10,P11,P12,P13,P14,P15")
    args = ap.parse_args()
    s = Settings(args.quick, args.rounds or (3 if args.quick else 5), Path(os.devnull))
    for row in p10_p15(s, {x.strip().upper() for x in args.only.split(",")}):
        print(row.id, row.figure, f"{row.value:.2f}{row.unit}", row.baseline, row.met, row.note)
