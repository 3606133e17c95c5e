"""Instructions a server request costs, counted: an A/B of server code that this kind of machine's
noise cannot move (issue 22).

CPU time per request (``server_cpu.py``, ``p3_split.py``) moves by ±20% between runs of the
same code on a shared 2-vCPU guest, more than most changes to the server move it. An
instruction count does not. Each case runs the app in-process, called through ASGI without
sockets (``p3_split``'s harness) on uvloop, with the garbage collector set as the server sets
it, under valgrind's ``callgrind``, twice: ``--small`` and ``--large`` groups of 32 requests;
the difference of the two totals over the requests between them is the count per request,
with start-up, imports and the seed cancelled out. Instructions are not time (a cache miss
costs hundreds of cycles and no instruction; a compiled module runs fewer instructions per
cycle or more): use it to see whether a change removes work, and time to see what that is
worth.

Routes, on P3's shapes (8 namespaces, 32 requests in flight as under ``wrk -c32``): the no-op
(fast path), the no-op, GET, SET, APPEND, and the APPEND with its store call answered at once
(its HTTP side alone, as ``p3_split.py`` splits it in time); and ``put``: a LangGraph ``put``
as ``BotWireSaver`` posts it (an atomic batch of four keys: the parent's writes appended, a 2 kB
record, the thread's index appended, its "latest" pointer), one at a time, as P10 sends it; and
the same batch with its record only (a key against a request: the difference is three keys' cost).

``--against DIR``: another checkout of this repository (``git worktree add /tmp/old HEAD~1``);
its packages' ``src`` folders go first on the children's ``PYTHONPATH``.

    uv run python benchmarks/instructions.py [--against DIR] [--routes put,APPEND]

Needs ``valgrind`` (Debian: ``apt-get install valgrind``) and PostgreSQL (a throwaway cluster,
or ``--postgres-url``). A case takes about a minute of valgrind; two run at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server
import uvloop
from _common import Settings, checkout_pythonpath, log, postgres

GROUP = 32  # requests in a group: in flight together, or one after another (``put``)
Body = Callable[[int], bytes]


def _key(kind: str) -> Callable[[int], str]:
    return lambda i: f"/v1/namespaces/bench-{i % 8}/keys/{kind}-{i % bench_server.KEYS}"


#: A LangGraph ``put`` as ``BotWireSaver`` posts it (``put_plan``): the parent's writes appended,
#: a record the size of a deflated one, the thread's index appended, its "latest" pointer. The
#: harness's own work is in the count too: the body is made by one ``%`` of a template, not
#: ``json.dumps`` of 2 kB per request.
_RECORD_OP = {"op": "set", "key": "t/th/cp//C%(i)d", "value": {"id": "C%(i)d", "z": "x" * 2000}}
_WRITES_OP = {
    "op": "append",
    "key": "t/th/w//C%(p)d",
    "items": [
        {"t": "task", "p": "~__pregel_pull, n3", "w": [[0, "step", 4], [1, "note", "y" * 200]]}
    ],
}
_PUT = json.dumps(
    {
        "atomic": True,
        "ops": [
            _WRITES_OP,
            _RECORD_OP,
            {"op": "append", "key": "t/th/idx/", "items": ["C%(i)d"]},
            {"op": "set", "key": "t/th/latest/", "value": {"ptr": "C%(i)d", "z": "x" * 120}},
        ],
    }
)
_RECORD = json.dumps({"atomic": True, "ops": [_RECORD_OP]})


def _put_body(i: int) -> bytes:
    return (_PUT % {"i": i, "p": i - 1}).encode()


def _record_body(i: int) -> bytes:
    """The ``put``'s record alone in an atomic batch: with ``put``, the cost of a key written
    apart from the cost of a request and its transaction."""
    return (_RECORD % {"i": i}).encode()


def _const(text: str) -> Body:
    data = text.encode()
    return lambda i: data


#: the APPEND with its store call answered at once (``p3_split.answered``): its HTTP side alone
ANSWERED = "APPEND (store answered at once)"
#: name -> (method, path of request i, body of request i, requests in flight: 32 or 1)
ROUTES: dict[str, tuple[str, Callable[[int], str], Body, int]] = {
    "no-op (fast path)": ("GET", lambda i: "/_noop/fast", _const(""), 32),
    "no-op": ("GET", lambda i: "/_noop", _const(""), 32),
    "GET": ("GET", _key("key"), _const(""), 32),
    "SET": ("PUT", _key("key"), _const(bench_server.PUT_BODY), 32),
    "APPEND": ("PATCH", _key("list"), _const(bench_server.PATCH_BODY), 32),
    ANSWERED: ("PATCH", _key("list"), _const(bench_server.PATCH_BODY), 32),
    "put": ("POST", lambda i: "/v1/namespaces/lg/batch", _put_body, 1),
    "put (record only)": ("POST", lambda i: "/v1/namespaces/lg1/batch", _record_body, 1),
}


# -- the child: one route, ``groups`` groups of requests, counted by valgrind -------------------


async def _child(dsn: str, route: str, groups: int) -> None:
    import p3_split

    from botwire_server import Settings as ServerSettings
    from botwire_server import create_app

    async with p3_split.running(create_app(ServerSettings(database=dsn))) as app:
        for i in range(bench_server.KEYS):  # the keys GET reads and APPEND extends
            await p3_split._call(app, "PUT", _key("key")(i), bench_server.PUT_BODY.encode())
            await p3_split._call(app, "PUT", _key("list")(i), b'{"value":[]}')
        method, path, body, in_flight = ROUTES[route]
        if route == ANSWERED:
            from botwire_server.storage._runner import StoreRunner

            StoreRunner.batch = p3_split.answered  # type: ignore[method-assign]
        for n in range(0, groups * GROUP, in_flight):  # a refusal raises (p3_split._call)
            calls = (
                p3_split._call(app, method, path(n + j), body(n + j)) for j in range(in_flight)
            )
            await asyncio.gather(*calls)


# -- the parent ------------------------------------------------------------------------------


def count(dsn: str, route: str, groups: int, tree: Path | None = None) -> int:
    """Instructions valgrind counted in a child running ``groups`` groups of ``route``."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is needed to count instructions: apt-get install valgrind")
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same hashes, the same dict probes
    if tree is not None:
        env["PYTHONPATH"] = checkout_pythonpath(tree)
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        route,
        str(groups),
        dsn,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{route} ({groups} groups) failed: {done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(dsn: str, route: str, small: int, large: int, tree: Path | None = None) -> float:
    """Instructions per request of ``route``: the two children's difference over the requests
    between them."""
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda g: count(dsn, route, g, tree), (small, large))
    return (b - a) / ((large - small) * GROUP)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="another checkout")
    ap.add_argument("--routes", default=",".join(ROUTES), help="comma-separated")
    ap.add_argument("--small", type=int, default=4, help="groups in the smaller child")
    ap.add_argument("--large", type=int, default=24, help="groups in the larger child")
    ap.add_argument("--postgres-url")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        route, groups, dsn = args.child
        uvloop.run(_child(dsn, route, int(groups)))  # the loop uvicorn serves on
        return 0
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = [r for r in routes if r not in ROUTES]
    if unknown:
        ap.error(f"unknown routes {unknown}; known: {', '.join(ROUTES)}")
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.against:
        checkout_pythonpath(args.against)  # not a checkout: say so before any valgrind
        trees.append((str(args.against), args.against.resolve()))
    settings = Settings(True, 1, Path(os.devnull), postgres_url=args.postgres_url)
    rows = []
    with postgres(settings) as dsn:
        if dsn is None:
            log("PostgreSQL is needed")
            return 1
        for route in routes:
            figures = []
            for name, tree in trees:
                got = per_request(dsn, route, args.small, args.large, tree)
                log(f"  {route}, {name}: {got:,.0f} instructions a request")
                figures.append((name, got))
            base = figures[0][1]
            rows += [f"| {route} | {n} | {v:,.0f} | {v / base:.3f}× |" for n, v in figures]
    print("| route | tree | instructions per request | against this tree |")
    print("|---|---|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
