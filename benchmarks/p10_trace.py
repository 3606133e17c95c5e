"""Where a P10 step's time goes on its critical path: every ``put`` of P10's graph timed phase by
phase, from the client's call to its return, with the server's own phases and its PostgreSQL
round trips; beside it the reference's ``put``, ``put_writes`` and ``get_tuple``, timed alike.

P10 (``pg_reference.py``) runs a chain: with ``durability="sync"`` a step waits for its
checkpoint's ``put``, so the step is the sum of what lies on that path, whichever process does
it. CPU per process (P10b) says what each side spends; this says what the step waits for.

The timestamps are ``time.perf_counter_ns`` (``CLOCK_MONOTONIC``: one clock for every process
of the machine), taken by wrappers that only read the clock and append to a list, around:

- the client: ``BotWireSaver.put`` and ``get_tuple``, ``PendingWrites.take`` (the step's
  writes taken to ride with the put), ``botwire._wire.batch_body`` (the request body), and the
  HTTP connection's send (each put back once the run is over);
- the server (``botwire-server``'s own ``main``, started through this file's ``--serve``): the
  app's entry (``BotWireAPI.__call__``, ahead of botwire's middlewares), the key routes'
  endpoint call (``KeyRoutes._serve``), the store's call (``StoreRunner.batch``: the body read
  and its ops validated), its answer's body, each pipeline round trip to PostgreSQL
  (``pipelined``, as ``_pg_write`` calls it) and each statement on the read pool
  (``AsyncPgReader._fetch_once``: a warm saver's ``get_tuple`` is one, split apart too);
- the reference (``PostgresSaver``, in the separate benchmark environment): its ``put``,
  ``put_writes`` and ``get_tuple``.

The wrappers cost a few µs each, so the traced step is a little slower than P10's; the figure
is the split, not the step. Same durable cluster settings as P10 (fsync, synchronous_commit and
full_page_writes on).

    uv run python benchmarks/p10_trace.py [--invokes 100] [--no-reference]
    uv run python benchmarks/p10_trace.py --overlap 100 [--rounds 3] [--invokes 100]

``--overlap US`` weighs a lever before it is built: the server's work moved out of the path
ahead of a write's first round trip and done while that round trip is in flight (the
transaction started once the body is parsed, the writes planned while the lock is taken). A
stand-in of ``US`` µs of busy work is put in each write either ahead of the round trip (it
lengthens "the write planned") or right after its statements are sent; what the second saves
against the first is what such a lever would save for that much work.

Only the standard library is imported at module level: ``--reference`` runs in the reference
environment, which has only its own side's packages.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _pg_worker, and (this tree's side) _common and pg_reference
ns = time.perf_counter_ns
#: what a mark is: (what, start ns, end ns)
Mark = tuple[str, int, int]
#: invokes before the traced ones: every one of P10's 10 threads has a history
WARM_UP = 30


# -- the server: botwire-server's main with the phase wrappers --------------------------------


#: where ``--busy`` puts its stand-in work: ahead of a write's first round trip, or in it
BUSY_AT = ("before", "during")


def serve(trace: str, argv: list[str], busy: int = 0, busy_at: str = "before") -> int:
    """``botwire-server`` with ``argv``, writing ``app``/``req``/``store``/``ans``/``rt``
    lines to ``trace`` (and ``read`` lines: each statement on the read pool). ``busy``: µs of
    stand-in work in each write (``--busy``), ``before`` its first round trip is sent (counted
    in "the write planned") or ``during`` it, once the statements are sent and before their
    answers are awaited (``_pg_wait._readable``'s first wait)."""
    from wakeups import busy as spin

    from botwire_server import cli
    from botwire_server.api import _hot
    from botwire_server.storage import _pg_async, _pg_wait, _pg_write, _runner

    out = open(trace, "w", buffering=1)  # noqa: SIM115 -- open for the process's life
    pipelined = _pg_write.pipelined
    readable = _pg_wait._readable
    owed = [False]  # a write's first round trip is sent: the stand-in work is due in it

    async def timed_pipelined(conn: Any, statements: Any) -> Any:
        first = busy and statements[0][0].startswith(b"BEGIN")
        if first and busy_at == "before":
            spin(busy / 1e6)
        t0 = ns()
        owed[0] = bool(first and busy_at == "during")
        try:
            answers = await pipelined(conn, statements)
        finally:
            owed[0] = False  # its answers came without a wait: none is spun in the next
        out.write(f"rt {t0} {ns()} {len(statements)}\n")
        return answers

    async def busy_readable(conn: Any, *, pipeline: bool = False) -> None:
        if owed[0]:
            owed[0] = False
            spin(busy / 1e6)
        await readable(conn, pipeline=pipeline)

    app_call = _hot.BotWireAPI.__call__

    async def timed_app(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            out.write(f"app {ns()}\n")
        await app_call(self, scope, receive, send)

    store_batch = _runner.StoreRunner.batch

    async def timed_batch(self: Any, *args: Any, **kwargs: Any) -> Any:
        out.write(f"store {ns()}\n")
        return await store_batch(self, *args, **kwargs)

    serve_route = _hot.KeyRoutes._serve

    async def timed_serve(self: Any, route: Any, scope: Any, receive: Any, send: Any) -> None:
        t0 = ns()

        async def answer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                out.write(f"ans {ns()}\n")
            await send(message)

        await serve_route(self, route, scope, receive, answer)
        out.write(f"req {t0} {ns()}\n")

    fetch = _pg_async.AsyncPgReader._fetch_once

    async def timed_fetch(self: Any, sql: str, params: list[Any]) -> Any:
        t0 = ns()
        rows = await fetch(self, sql, params)
        out.write(f"read {t0} {ns()}\n")
        return rows

    _pg_async.AsyncPgReader._fetch_once = timed_fetch  # type: ignore[method-assign]
    _pg_write.pipelined = timed_pipelined  # type: ignore[assignment]
    if busy:  # else the trace's waits stay as they are, without one more call each
        _pg_wait._readable = busy_readable  # type: ignore[assignment]
    _hot.BotWireAPI.__call__ = timed_app  # type: ignore[method-assign]
    _runner.StoreRunner.batch = timed_batch  # type: ignore[method-assign]
    _hot.KeyRoutes._serve = timed_serve  # type: ignore[method-assign]
    return cli.main(argv)


# -- the clients ------------------------------------------------------------------------------


@contextlib.contextmanager
def _timed(owner: Any, name: str, marks: list[Mark], what: str | None = None) -> Iterator[None]:
    """``owner.name`` marked with its start and end while inside; put back on the way out."""
    own = name in vars(owner)  # else inherited: deleted again on the way out
    real = vars(owner)[name] if own else getattr(owner, name)  # the function, not a bound one

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = ns()
        result = real(*args, **kwargs)
        marks.append((what or name, t0, ns()))
        return result

    setattr(owner, name, timed)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, real)
        else:
            delattr(owner, name)


def _run_graph(cfg: dict[str, Any], marks: list[Mark], warm_up: int = WARM_UP) -> float:
    """P10's graph (``_pg_worker.task_graph``): ``warm_up`` invokes, then ``cfg['invokes']``
    traced; the step in ms."""
    import _pg_worker

    ready, _pg_worker._ready = _pg_worker._ready, lambda: None  # no orchestrator: at once
    try:
        _pg_worker.task_graph({**cfg, "invokes": warm_up})  # threads with a history, as in P10
        marks.clear()
        return float(_pg_worker.task_graph(cfg)["step_ms"])
    finally:
        _pg_worker._ready = ready


def reference(dsn: str, invokes: int) -> dict[str, Any]:
    """The reference's side (run by the reference environment's interpreter)."""
    from langgraph.checkpoint.postgres import PostgresSaver

    marks: list[Mark] = []
    with contextlib.ExitStack() as stack:
        for name in ("put", "put_writes", "get_tuple"):
            stack.enter_context(_timed(PostgresSaver, name, marks))
        cfg = {"side": "ref", "dsn": dsn, "invokes": invokes, "threads": 10}
        step = _run_graph(cfg, marks)
    out: dict[str, Any] = {"step_ms": step}
    for name in ("put", "put_writes", "get_tuple"):
        out[name] = _spread([b - a for what, a, b in marks if what == name])
    out["between puts"] = _spread(_between(marks))
    return out


def botwire(url: str, invokes: int, trace: str, warm_up: int = WARM_UP) -> dict[str, Any]:
    """botwire's side, against the traced server at ``url`` writing ``trace``."""
    from botwire import _wire
    from botwire.backends import _http_sync
    from botwire_langgraph import BotWireSaver, _pending

    marks: list[Mark] = []
    with contextlib.ExitStack() as stack:
        for owner, name in (
            (BotWireSaver, "put"),
            (BotWireSaver, "get_tuple"),
            (_pending.PendingWrites, "take"),
            (_wire, "batch_body"),  # _http calls it as _wire.batch_body
        ):
            stack.enter_context(_timed(owner, name, marks))
        stack.enter_context(_timed(_http_sync._Connection, "_send", marks, "send"))
        cfg = {"side": "botwire", "url": url, "invokes": invokes, "threads": 10}
        step = _run_graph(cfg, marks, warm_up)
    time.sleep(0.2)  # the last answer's lines
    # the warm-up's lines too: only those inside a traced put's window are used
    server = Path(trace).read_text().split("\n")
    return {"step_ms": step, **split(marks, server)}


# -- the analysis -----------------------------------------------------------------------------

#: botwire's phases of a put, in order: each the time from the mark before it to its own
PHASES = (
    "client: LangGraph hands over, the step's writes taken",
    "client: the checkpoint serialised, the request built",
    "client: the request sent",
    "HTTP in: loopback and uvicorn",
    "server: botwire's middlewares",
    "server: the body read, its ops validated",
    "server: the write planned up to its first send",
    "PostgreSQL round trip 1: BEGIN, the namespace lock, the reads",
    "server: the writes planned from the reads",
    "PostgreSQL round trip 2: the writes and a durable COMMIT",
    "server: the answer built and sent",
    "HTTP out and the client's reading of the answer",
)


#: the phases of botwire's ``get_tuple`` (a warm saver's: one batch of gets, one statement)
READ_PHASES = (
    "client: the read planned, the request built and sent; HTTP in",
    "server: middlewares, the body read, the gets validated",
    "PostgreSQL: the read statement (psycopg's cursor, one round trip)",
    "server: the answer built and sent",
    "HTTP out and the client's decoding of the checkpoint",
)


def split(marks: list[Mark], server: list[str]) -> dict[str, Any]:
    """Each phase of each put whose marks are all there (medians and quartiles, µs), and of
    each ``get_tuple`` that read in one statement."""
    reqs, rts, reads = [], [], []
    seen: dict[str, list[int]] = {"app": [], "store": [], "ans": []}
    for line in server:
        f = line.split()
        if f and f[0] == "req":
            reqs.append(int(f[1]))
        elif f and f[0] in ("rt", "read"):
            (rts if f[0] == "rt" else reads).append((int(f[1]), int(f[2])))
        elif f and f[0] in seen:
            seen[f[0]].append(int(f[1]))
    reqs.sort()
    rts.sort()
    reads.sort()
    apps, stores, answers = (sorted(seen[k]) for k in ("app", "store", "ans"))
    taken = sorted(b for w, _, b in marks if w == "take")
    built = sorted(b for w, _, b in marks if w == "batch_body")
    sends = sorted(a for w, a, _ in marks if w == "send")
    phases: dict[str, list[int]] = {name: [] for name in PHASES}
    total: list[int] = []
    for what, a, b in marks:
        if what != "put":
            continue
        points = _points(a, b, taken, built, sends, apps, reqs, stores, rts, answers)
        if points is None:
            continue
        _add_spans(phases, points)
        total.append(b - a)
    out: dict[str, Any] = {"puts": len(total), "put": _spread(total)}
    out["phases"] = {name: _spread(v) for name, v in phases.items()}
    out["get_tuple"] = _spread([b - a for w, a, b in marks if w == "get_tuple"])
    read_phases: dict[str, list[int]] = {name: [] for name in READ_PHASES}
    for what, a, b in marks:
        at = _read_points(a, b, apps, reads, answers) if what == "get_tuple" else None
        if at is None:
            continue
        _add_spans(read_phases, at)
    out["reads"] = len(read_phases[READ_PHASES[0]])
    out["read_phases"] = {name: _spread(v) for name, v in read_phases.items()}
    out["between puts"] = _spread(_between(marks))
    return out


def _add_spans(phases: dict[str, list[int]], points: list[int]) -> None:
    """Each of ``phases`` (in order) takes the time from one of ``points`` to the next."""
    for name, start, end in zip(phases, points[:-1], points[1:], strict=True):
        phases[name].append(end - start)


def _points(a: int, b: int, *marks: Any) -> list[int] | None:
    """The marks of the put from ``a`` to ``b`` in :data:`PHASES`' order (``None``: one is
    missing, or its request was not one write transaction of two round trips with the store
    called before the first). ``marks``: the sorted client marks (taken, built, sent), then the
    server's (app entries, requests, store calls, round trips, answers)."""
    taken, built, sends, apps, reqs, stores, rts, answers = marks
    took, body, sent, req = (_first(xs, a, b) for xs in (taken, built, sends, reqs))
    if took is None or body is None or sent is None or req is None:
        return None
    app, store, answer = _first(apps, sent, req), _first(stores, req, b), _first(answers, req, b)
    trips = [t for t in rts[bisect.bisect_left(rts, (req, 0)) :] if t[0] <= b][:3]
    if app is None or store is None or answer is None or len(trips) != 2 or trips[0][0] < store:
        return None
    (rt1, rt1_end), (rt2, rt2_end) = trips
    return [a, took, body, sent, app, req, store, rt1, rt1_end, rt2, rt2_end, answer, b]


def _read_points(
    a: int, b: int, apps: list[int], reads: list[tuple[int, int]], answers: list[int]
) -> list[int] | None:
    """The marks of the ``get_tuple`` from ``a`` to ``b`` in :data:`READ_PHASES`' order
    (``None``: its request was not one statement's read)."""
    app = _first(apps, a, b)
    if app is None:
        return None
    mine = [r for r in reads[bisect.bisect_left(reads, (app, 0)) :] if r[1] <= b]
    answer = _first(answers, mine[0][1], b) if len(mine) == 1 else None
    if answer is None:
        return None
    return [a, app, mine[0][0], mine[0][1], answer, b]


def _first(xs: list[int], lo: int, hi: int) -> int | None:
    """The first of sorted ``xs`` within ``[lo, hi]``."""
    i = bisect.bisect_left(xs, lo)
    return xs[i] if i < len(xs) and xs[i] <= hi else None


def _between(marks: list[Mark]) -> list[int]:
    """From each put's return to the next put's call, within an invoke (a gap of over 2 ms is
    the end of one)."""
    puts = sorted((a, b) for what, a, b in marks if what == "put")
    gaps = [nxt[0] - cur[1] for cur, nxt in itertools.pairwise(puts)]
    return [g for g in gaps if 0 <= g < 2_000_000]


def _spread(xs: list[int]) -> list[float]:
    """Median, first and third quartile, in µs (NaN when empty)."""
    if len(xs) < 2:
        return [xs[0] / 1000] * 3 if xs else [float("nan")] * 3
    q = statistics.quantiles(xs, n=4)
    return [statistics.median(xs) / 1000, q[0] / 1000, q[2] / 1000]


# -- the orchestration ------------------------------------------------------------------------


def measure(
    invokes: int,
    with_reference: bool = True,
    postgres_url: str | None = None,
    warm_up: int = WARM_UP,
    busy: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """Both sides on one durable cluster (P10's settings), or on ``postgres_url`` as it is
    configured: ``{"botwire": ..., "ref": ...}``. ``busy``: µs of stand-in work in each of
    the server's writes and where (:func:`serve`)."""
    from _common import Settings, _as_url, free_port, wait_port
    from pg_reference import durable_postgres, refenv_python

    out: dict[str, Any] = {}
    with (
        durable_postgres(Settings(True, 1, HERE, postgres_url)) as dsn,
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert dsn is not None
        trace = os.path.join(tmp, "server.trace")
        port = free_port()
        argv = ["--host", "127.0.0.1", "--port", str(port), "--database", _as_url(dsn)]
        argv += ["--no-access-log", "--log-level", "warning"]
        cmd = [sys.executable, __file__, "--serve", trace]
        if busy is not None:
            cmd += ["--busy", str(busy[0]), "--busy-at", busy[1]]
        proc = subprocess.Popen([*cmd, "--", *argv])
        try:
            wait_port(port, 30)
            out["botwire"] = botwire(f"http://127.0.0.1:{port}", invokes, trace, warm_up)
        finally:
            proc.terminate()
            proc.wait(30)
        if with_reference:
            res = subprocess.run(
                [refenv_python(), __file__, "--reference", dsn, "--invokes", str(invokes)],
                check=True,
                capture_output=True,
                text=True,
            )
            out["ref"] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def report(result: dict[str, Any]) -> list[str]:
    """The Markdown lines of a :func:`measure` result."""
    b = result["botwire"]
    lines = [
        f"botwire: step {b['step_ms']:.2f} ms (traced), {b['puts']} puts split",
        "",
        "| phase of a `put` | median µs | p25–p75 |",
        "|---|---:|---:|",
    ]
    for name, (med, lo, hi) in b["phases"].items():
        lines.append(f"| {name} | {med:.0f} | {lo:.0f}–{hi:.0f} |")
    for name in ("put", "get_tuple", "between puts"):
        med, lo, hi = b[name]
        lines.append(f"| **{name}** (whole) | {med:.0f} | {lo:.0f}–{hi:.0f} |")
    if b.get("reads"):
        lines += ["", f"{b['reads']} `get_tuple` reads split", ""]
        lines += ["| phase of a `get_tuple` | median µs | p25–p75 |", "|---|---:|---:|"]
        for name, (med, lo, hi) in b["read_phases"].items():
            lines.append(f"| {name} | {med:.0f} | {lo:.0f}–{hi:.0f} |")
    ref = result.get("ref")
    if ref:
        lines += ["", f"reference: step {ref['step_ms']:.2f} ms (traced)", ""]
        lines += ["| `PostgresSaver` | median µs | p25–p75 |", "|---|---:|---:|"]
        for name in ("put", "put_writes", "get_tuple", "between puts"):
            med, lo, hi = ref[name]
            lines.append(f"| {name} | {med:.0f} | {lo:.0f}–{hi:.0f} |")
    return lines


#: the phases a write's work moved into its first round trip leaves (``overlap``)
OVERLAP_PHASES = (PHASES[6], PHASES[7])


def overlap(busy: int, rounds: int, invokes: int) -> list[str]:
    """What moving ``busy`` µs of the server's work into a write's first round trip would save:
    the chain traced with no stand-in work, with it before the round trip, and with it during
    (:func:`serve`), alternated over ``rounds``; the Markdown lines of the medians."""
    sides: dict[str, list[dict[str, Any]]] = {"none": [], "before": [], "during": []}
    for _ in range(rounds):
        for side, runs in sides.items():
            where = None if side == "none" else (busy, side)
            runs.append(measure(invokes, with_reference=False, busy=where)["botwire"])
    lines = [
        f"{busy} µs of stand-in work a write, {rounds} rounds of {invokes} invokes (medians)",
        "",
        "| stand-in work | write planned + round trip 1, µs | put, µs | step, ms |",
        "|---|---:|---:|---:|",
    ]
    for side, runs in sides.items():
        both = statistics.median(sum(r["phases"][p][0] for p in OVERLAP_PHASES) for r in runs)
        put = statistics.median(r["put"][0] for r in runs)
        step = statistics.median(r["step_ms"] for r in runs)
        lines.append(f"| {side} | {both:.0f} | {put:.0f} | {step:.2f} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--invokes", type=int, default=100)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument(
        "--overlap",
        type=int,
        metavar="US",
        help="no reference: what US µs of the server's work moved into a write's first "
        "round trip would save (no stand-in, before it, during it; alternated)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="--overlap's rounds")
    ap.add_argument("--serve", metavar="TRACE", help=argparse.SUPPRESS)
    ap.add_argument("--busy", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--busy-at", choices=BUSY_AT, default="before", help=argparse.SUPPRESS)
    ap.add_argument("--reference", metavar="DSN", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.serve:
        return serve(args.serve, [a for a in rest if a != "--"], args.busy, args.busy_at)
    if args.overlap:
        for line in overlap(args.overlap, args.rounds, args.invokes):
            print(line)
        return 0
    if args.reference:
        print(json.dumps(reference(args.reference, args.invokes)))
        return 0
    for line in report(measure(args.invokes, not args.no_reference)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
