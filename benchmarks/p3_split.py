"""Where a P3 APPEND's server CPU goes on PostgreSQL, split without the noise of sockets; and how
many database round trips a request costs under P3's own load (issue 22).

1. **In-process**: the app as :func:`botwire_server.create_app` builds it, called through ASGI
   without sockets (32 requests in flight over P3's 8 namespaces, ``asyncio.gather``-ed, uvloop,
   the garbage collector set as the server sets it),
   the process's CPU per request for ``/_noop``, ``/_noop/fast``, P3's APPEND, and the same
   APPEND with the store's answer returned at once (``StoreRunner.batch`` replaced for that
   round only): the HTTP side of a write against its store call. Rounds alternate.
2. **Under ``wrk``**: a server run in this process by uvicorn as the CLI configures it, with the
   write path's transactions (``write_async``) and round trips (``pipelined``) counted, under
   P3's APPEND and SET load (``wrk -t1 -c32``): transactions and round trips per request.

The second part's wrappers only count; the first replaces the store call for its one marked
round and puts the real one back. Both parts use P3's database (the throwaway cluster of
``_common.postgres``, or ``--postgres-url``).

    uv run python benchmarks/p3_split.py [--seconds 1.5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server
from _common import Settings, free_port, log, median, postgres, wait_port, wrk_available

IN_FLIGHT = 32
PATCH = bench_server.PATCH_BODY.encode()


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")]
    if body:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def _call(app: Any, method: str, path: str, body: bytes) -> None:
    """One request through the ASGI app; its answer must be a 200."""
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # the app never asks again for a whole body; a disconnect would
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(method, path, body), receive, send)
    if status != [200]:
        raise RuntimeError(f"{method} {path} answered {status}")


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[Any]:
    """``app`` started through its ASGI lifespan, with the garbage collector then set as
    ``botwire-server`` sets it before it serves (:func:`as_served`), and shut down on the way
    out."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    life = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    as_served()
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life


async def answered(self: Any, namespace: str, ops: Any, **kw: Any) -> list[dict[str, Any]]:
    """``StoreRunner.batch`` answering an APPEND at once: the request without its store call."""
    return [{"version": 1, "length": 1}]


def as_served() -> None:
    """The garbage collector set as ``botwire-server`` sets it before it serves (start-up's
    objects frozen, young collections every 20,000 allocations, ``cli._freeze_startup_objects``):
    with Python's defaults the collector took ~17% of an in-process APPEND's CPU (cProfile),
    work a served request does not do. A tree from before that setting keeps the defaults."""
    from botwire_server import cli

    freeze = getattr(cli, "_freeze_startup_objects", None)
    if freeze is not None:
        freeze()


def _append_path(i: int) -> str:
    return f"/v1/namespaces/bench-{i % 8}/keys/list-{i % bench_server.KEYS}"


ROUTES = {
    "/_noop": ("GET", lambda i: "/_noop", b""),
    "/_noop/fast": ("GET", lambda i: "/_noop/fast", b""),
    "APPEND": ("PATCH", _append_path, PATCH),
    "APPEND, store answered at once": ("PATCH", _append_path, PATCH),
}


async def _in_process(dsn: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    from botwire_server import Settings as ServerSettings
    from botwire_server import create_app
    from botwire_server.storage._runner import StoreRunner

    async with running(create_app(ServerSettings(database=dsn))) as app:
        seed = json.dumps({"value": [bench_server.VALUE]}).encode()
        for i in range(bench_server.KEYS):
            await _call(app, "PUT", _append_path(i), seed)
        real = StoreRunner.batch
        out: dict[str, list[float]] = {name: [] for name in ROUTES}
        try:
            for _ in range(rounds):
                for name, (method, path, body) in ROUTES.items():
                    if name.endswith("at once"):
                        StoreRunner.batch = answered  # type: ignore[method-assign]
                    n, cpu0, t0 = 0, time.process_time(), time.perf_counter()
                    while time.perf_counter() - t0 < seconds:
                        await asyncio.gather(
                            *(_call(app, method, path(n + j), body) for j in range(IN_FLIGHT))
                        )
                        n += IN_FLIGHT
                    StoreRunner.batch = real  # type: ignore[method-assign]
                    out[name].append(1e6 * (time.process_time() - cpu0) / n)
        finally:
            StoreRunner.batch = real  # type: ignore[method-assign]
    return out


def _under_wrk(dsn: str, seconds: float, rounds: int) -> dict[str, list[tuple[float, float]]]:
    import uvicorn

    from botwire_server import Settings as ServerSettings
    from botwire_server import create_app
    from botwire_server._protocol import http_protocol_options
    from botwire_server.storage import _pg_async, _pg_write

    counts: collections.Counter[str] = collections.Counter()
    write_async, pipelined = _pg_async.write_async, _pg_write.pipelined

    async def counted_write(*args: Any, **kw: Any) -> Any:
        counts["transactions"] += 1
        return await write_async(*args, **kw)

    async def counted_pipeline(*args: Any, **kw: Any) -> Any:
        counts["round trips"] += 1
        return await pipelined(*args, **kw)

    port = free_port()
    config = uvicorn.Config(
        create_app(ServerSettings(database=dsn, port=port)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        **http_protocol_options(),
    )
    server = uvicorn.Server(config)
    out: dict[str, list[tuple[float, float]]] = {"APPEND": [], "SET": []}
    failed: list[BaseException] = []

    def drive() -> None:
        try:
            wait_port(port, 30)
            bench_server._seed(port)
            bench_server._load(port, "APPEND", 1.0)  # warm-up
            for _ in range(rounds):
                for name in out:
                    counts.clear()
                    result = bench_server._load(port, name, seconds)
                    n = result["rps"] * seconds
                    out[name].append((counts["transactions"] / n, counts["round trips"] / n))
                    log(
                        f"    {name:6} {result['rps']:7,.0f} req/s  "
                        f"{counts['transactions'] / n:.2f} transactions, "
                        f"{counts['round trips'] / n:.2f} round trips per request"
                    )
        except BaseException as exc:  # reported once the server has stopped
            failed.append(exc)
        finally:
            server.should_exit = True

    _pg_async.write_async, _pg_write.pipelined = counted_write, counted_pipeline
    try:
        threading.Thread(target=drive, daemon=True).start()
        server.run()
    finally:
        _pg_async.write_async, _pg_write.pipelined = write_async, pipelined
    if failed:
        raise failed[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="per route and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--postgres-url", default=None)
    args = ap.parse_args()
    import uvloop

    settings = Settings(
        quick=True, rounds=args.rounds, out=Path("."), postgres_url=args.postgres_url
    )
    with postgres(settings) as dsn:
        if dsn is None:
            log("PostgreSQL unavailable")
            return 1
        log("in-process: ASGI calls, 32 in flight over 8 namespaces")
        inproc = uvloop.run(_in_process(dsn, args.seconds, args.rounds))
        load: dict[str, list[tuple[float, float]]] = {}
        if wrk_available():
            log("under wrk -t1 -c32: transactions and round trips per request")
            load = _under_wrk(dsn, max(args.seconds, 2.0) * 2, max(2, args.rounds // 2))
        else:
            log("wrk missing: the round trips under load are not counted")
    print("\n| in-process | CPU per request (median) | range |\n|---|---:|---:|")
    for name, us in inproc.items():
        print(f"| {name} | {median(us):.1f} µs | {min(us):.1f}–{max(us):.1f} µs |")
    if load:
        print("\n| under `wrk` | transactions per request | round trips per request |")
        print("|---|---:|---:|")
        for name, pairs in load.items():
            tx, rt = [p[0] for p in pairs], [p[1] for p in pairs]
            print(f"| {name} | {min(tx):.2f}–{max(tx):.2f} | {min(rt):.2f}–{max(rt):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
