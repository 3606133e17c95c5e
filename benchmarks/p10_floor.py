"""A floor for P10 through any HTTP server: what a step costs when the server does no botwire work.

P10 (``pg_reference.py``) times a 10-node LangGraph chain with ``durability="sync"``. Here the
same graph runs on ``InMemorySaver`` plus one HTTP POST per ``put`` and per ``put_writes`` (the
serialised checkpoint or writes, as a saver over HTTP would send them). The POST goes to a bare
ASGI route under uvicorn, with ``botwire-server``'s HTTP protocol options and ``uvloop``. The
route does no auth, no validation and no engine work; per request it makes either

- ``f1``: one PostgreSQL round trip (``BEGIN; upsert; insert; COMMIT`` as one simple query), or
- ``f2``: two round trips (a lock statement first, then the writes with ``COMMIT``),

on the durable cluster P10 uses (fsync and synchronous_commit on). Rounds alternate with
``PostgresSaver`` from the reference environment; ratios are medians of per-round ratios.

    uv run python benchmarks/p10_floor.py [--rounds 5] [--invokes 60] [--per-step]

``--per-step``: one POST per step instead, as ``BotWireSaver`` sends a step (its ``put`` carries
the ``put_writes`` that came before it; one that comes later rides with the next ``put``, and
what is left when an invoke returns is posted after its timing ends, which only flatters the
floor).

Read the result as a bound, not as a design: a server that keeps botwire's guarantees does
more per request than this route.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ME = str(Path(__file__).resolve())
if str(Path(ME).parent) not in sys.path:
    sys.path.insert(0, str(Path(ME).parent))  # _pg_worker, _common, pg_reference

UPSERT = (
    "INSERT INTO floor_cp (k, v) VALUES ($bw${k}$bw$, $bw${v}$bw$)"
    " ON CONFLICT (k) DO UPDATE SET v = excluded.v"
)
LOG = "INSERT INTO floor_log (k, v) VALUES ($bw${k}$bw$, $bw${v}$bw$)"
TABLES = (
    "CREATE TABLE IF NOT EXISTS floor_cp (k text PRIMARY KEY, v text);"
    " CREATE TABLE IF NOT EXISTS floor_log (id bigserial PRIMARY KEY, k text, v text)"
)
LOCK = (
    "INSERT INTO floor_cp (k, v) VALUES ($bw$lock-{k}$bw$, '')"
    " ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING k"
)


# -- the server: a bare ASGI route ---------------------------------------------------------------


def serve(dsn: str, port: int, round_trips: int) -> None:
    """Serve ``POST`` of ``{"k": ..., "v": ...}`` on ``port`` until killed."""
    import psycopg
    import uvicorn

    from botwire_server._protocol import http_protocol_options

    state: dict[str, Any] = {"conn": None}
    lock = asyncio.Lock()  # one connection, one request's statements at a time (P10 is a chain)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        doc = json.loads(body)
        k, v = doc["k"].replace("$", ""), doc["v"].replace("$", "")
        async with lock:
            conn = state["conn"]
            if conn is None:
                conn = state["conn"] = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                await conn.execute(TABLES)
            writes = f"{UPSERT.format(k=k, v=v)}; {LOG.format(k=k, v=v[:64])}; COMMIT"
            if round_trips == 1:
                await conn.execute(f"BEGIN; {writes}")
            else:
                await conn.execute(f"BEGIN; {LOCK.format(k=k[:4])}")
                await conn.execute(writes)
        out = b'{"ok":true}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(out)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        **http_protocol_options(),
    )


# -- the client: P10's graph, each checkpoint also POSTed ----------------------------------------


def drive(port: int, invokes: int, per_step: bool = False) -> dict[str, float]:
    """P10's graph on an ``InMemorySaver`` that POSTs every ``put`` and ``put_writes`` (or,
    ``per_step``, each ``put`` with the writes that came before it)."""
    import http.client
    import statistics
    import threading
    import uuid

    import _pg_worker
    from langgraph.checkpoint.memory import InMemorySaver

    conn = http.client.HTTPConnection("127.0.0.1", port)
    one_at_a_time = threading.Lock()  # LangGraph calls the saver from its executor's threads

    posts = [0]

    def post(key: str, payload: bytes) -> None:
        body = json.dumps({"k": key, "v": payload.hex()[:3000]}).encode()
        with one_at_a_time:
            posts[0] += 1
            conn.request("POST", "/floor", body, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
        if response.status != 200:
            raise RuntimeError(f"the floor's route answered {response.status}")

    held: list[bytes] = []  # per_step: the writes waiting for the next put
    held_lock = threading.Lock()

    def take() -> bytes:
        with held_lock:
            out = b"".join(held)
            held.clear()
            return out

    class PostingSaver(InMemorySaver):
        def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            out = super().put(config, checkpoint, metadata, new_versions)
            payload = self.serde.dumps_typed(checkpoint)[1]
            if per_step:
                time.sleep(0)  # as BotWireSaver.put: a put_writes about to arrive rides here
                payload += take()
            post(out["configurable"]["checkpoint_id"], payload)
            return out

        def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
            super().put_writes(config, writes, task_id, task_path)
            payload = b"".join(self.serde.dumps_typed(v)[1] for _, v in writes)
            if per_step:
                with held_lock:
                    held.append(payload)
            else:
                post(task_id, payload)

    app = _pg_worker._graph(PostingSaver())
    run_id = uuid.uuid4().hex[:8]

    def invoke(i: int) -> None:
        config = {"configurable": {"thread_id": f"floor-{run_id}-{i % 10}"}}
        out = app.invoke({"step": 0, "note": ""}, config, durability="sync")
        assert out["step"] == _pg_worker.NODES, out

    def leftover() -> None:
        if payload := take():
            post("leftover", payload)

    invoke(-1)
    leftover()
    times = []
    posts[0] = 0
    cpu0 = time.process_time()
    for i in range(invokes):
        t = time.perf_counter()
        invoke(i)
        times.append((time.perf_counter() - t) * 1000)
        leftover()
    return {
        "step_ms": statistics.median(times) / _pg_worker.NODES,
        "client_cpu_ms_per_invoke": (time.process_time() - cpu0) * 1000 / invokes,
        "posts_per_invoke": posts[0] / invokes,
    }


# -- the orchestration ---------------------------------------------------------------------------


@contextlib.contextmanager
def floor_server(dsn: str, round_trips: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The bare route (:func:`serve`) in a process of its own: the process and its port."""
    from _common import free_port, wait_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, ME, "--serve", dsn, str(port), str(round_trips)])
    try:
        wait_port(port, timeout=30.0)
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def drive_once(
    floor: tuple[subprocess.Popen[bytes], int], invokes: int, *, per_step: bool
) -> dict[str, float]:
    """:func:`drive` in a process of its own against ``floor`` (:func:`floor_server`): its
    figures, and the route's CPU per invoke (``server_cpu_ms_per_invoke``, the warm-up's
    invoke included)."""
    from pg_reference import proc_cpu

    proc, port = floor
    cpu0 = proc_cpu(proc.pid)
    argv = [sys.executable, ME, "--drive", str(port), str(invokes), str(int(per_step))]
    out: dict[str, float] = json.loads(subprocess.check_output(argv, text=True).splitlines()[-1])
    out["server_cpu_ms_per_invoke"] = (proc_cpu(proc.pid) - cpu0) * 1000 / (invokes + 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--invokes", type=int, default=60)
    ap.add_argument("--serve", nargs=3, metavar=("DSN", "PORT", "ROUND_TRIPS"), help="internal")
    ap.add_argument("--per-step", action="store_true", help="one POST per step (see module)")
    ap.add_argument("--drive", nargs=3, metavar=("PORT", "INVOKES", "PER_STEP"), help="internal")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return 0
    if args.drive:
        print(json.dumps(drive(int(args.drive[0]), int(args.drive[1]), args.drive[2] == "1")))
        return 0

    import os

    import pg_reference as ref
    from _common import Settings, median

    settings = Settings(False, args.rounds, Path(os.devnull))
    python = ref.refenv_python()
    steps: dict[str, list[float]] = {"ref": [], "f1": [], "f2": []}
    with ref.durable_postgres(settings) as dsn, contextlib.ExitStack() as stack:
        assert dsn is not None
        postmaster = ref.postmaster_pid(dsn)
        floors = {f"f{rts}": stack.enter_context(floor_server(dsn, rts)) for rts in (1, 2)}
        for r in range(args.rounds):
            for side in ["ref", "f1", "f2"] if r % 2 == 0 else ["f2", "f1", "ref"]:
                if side == "ref":
                    cfg = {"side": "ref", "dsn": dsn, "task": "graph"}
                    cfg.update(invokes=args.invokes, threads=10)
                    out = ref.run_worker(python, cfg, ref.Counters([], postmaster))
                    steps["ref"].append(out["step_ms"])
                    print(f"ref step {out['step_ms']:.2f} ms", flush=True)
                    continue
                out = drive_once(floors[side], args.invokes, per_step=args.per_step)
                steps[side].append(out["step_ms"])
                print(
                    f"{side}  step {out['step_ms']:.2f} ms, CPU per invoke: client "
                    f"{out['client_cpu_ms_per_invoke']:.1f} ms, "
                    f"server {out['server_cpu_ms_per_invoke']:.1f} ms",
                    flush=True,
                )
    for side in ("f1", "f2"):
        ratio = median([b / a for a, b in zip(steps["ref"], steps[side], strict=True)])
        print(f"{side}: {ratio:.2f}x PostgresSaver ({median(steps[side]):.2f} ms per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
