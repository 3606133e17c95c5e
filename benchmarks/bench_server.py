"""P3: requests per second of one ``botwire-server`` process (one uvicorn worker) for GET, SET and
APPEND, as a fraction of a no-op route in the same process under the same load generator; and,
for context, ``webdis`` in front of Redis under the same generator.

The load generator is ``wrk`` (one thread, keep-alive connections) when installed, else the
raw-asyncio generator of ``benchmarks/server_rps.py``. Scenarios run in rounds, in a rotating
order, and each round's rates are divided by that round's no-op rate.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    Proc,
    Row,
    Settings,
    free_port,
    interleaved,
    log,
    median,
    postgres,
    python_load,
    server,
    wait_port,
    wrk,
    wrk_available,
)

__all__ = ["p3_rps"]

CONNECTIONS = 32
KEYS = 256
VALUE = {"role": "assistant", "content": "x" * 200, "turn": 7}
PUT_BODY = json.dumps({"value": VALUE})
PATCH_BODY = json.dumps({"append": [VALUE]})


def _lua(method: str, body: str | None, path_expr: str) -> str:
    """A wrk script sending ``method`` to a path rotating over the keys."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = [[{body}]]")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines += [
        "local i = 0",
        "request = function()",
        "  i = i + 1",
        f"  return wrk.format(nil, {path_expr})",
        "end",
    ]
    return "\n".join(lines) + "\n"


KEY_PATH = f'"/v1/namespaces/bench-" .. (i % 8) .. "/keys/key-" .. (i % {KEYS})'
BOTWIRE = {
    "no-op": (None, None, '"/_noop"'),
    # the same no-op served as the key routes are (outside FastAPI's router: api/_hot.py)
    "no-op (fast path)": (None, None, '"/_noop/fast"'),
    "GET": ("GET", None, KEY_PATH),
    "SET": ("PUT", PUT_BODY, KEY_PATH),
    "APPEND": ("PATCH", PATCH_BODY, KEY_PATH.replace("key-", "list-")),
}


def _raw(method: str, path: str, body: str | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is None:
        return (head + "\r\n").encode()
    data = body.encode()
    return (
        head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def _python_requests(name: str) -> list[bytes]:
    method, body, path = BOTWIRE[name]
    if name.startswith("no-op"):
        return [_raw("GET", path.strip('"'), None)]
    kind = "list" if name == "APPEND" else "key"
    return [
        _raw(method or "GET", f"/v1/namespaces/bench-{i % 8}/keys/{kind}-{i}", body)
        for i in range(KEYS)
    ]


def _load(
    port: int, name: str, seconds: float, table: dict[str, Any] | None = None
) -> dict[str, float]:
    table = table or BOTWIRE
    method, body, path = table[name]
    if wrk_available():
        script = _lua(method or "GET", body, path)
        return wrk(f"http://127.0.0.1:{port}", seconds, CONNECTIONS, script)
    return python_load(port, _python_requests(name), seconds, CONNECTIONS)


def _seed(port: int, namespaces: int = 8) -> None:
    """Every key and list the scenarios write, over ``namespaces`` namespaces (P3's are 8)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(KEYS):
        for kind in ("key", "list"):
            body = PUT_BODY if kind == "key" else json.dumps({"value": [VALUE]})
            conn.request(
                "PUT",
                f"/v1/namespaces/bench-{i % namespaces}/keys/{kind}-{i}",
                body,
                {"Content-Type": "application/json"},
            )
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
    conn.close()


def _measure(
    port: int, names: list[str], seconds: float, rounds: int
) -> dict[str, list[dict[str, float]]]:
    _load(port, "no-op", min(1.0, seconds))  # warm-up
    return interleaved({n: (lambda n=n: _load(port, n, seconds)) for n in names}, rounds)


def _backend(
    label: str, database: str, extra: list[str], settings: Settings, seconds: float
) -> dict[str, Any]:
    with server(*extra, database=database) as srv:
        _seed(srv.port)
        runs = _measure(srv.port, list(BOTWIRE), seconds, settings.rounds)
    noop = [r["rps"] for r in runs["no-op"]]
    fast = [r["rps"] for r in runs["no-op (fast path)"]]
    out: dict[str, Any] = {"runs": runs}
    for name in BOTWIRE:
        rps = [r["rps"] for r in runs[name]]
        out[name] = {
            "rps": median(rps),
            "ratio": median([a / b for a, b in zip(rps, noop, strict=True)]),
            "ratio_fast": median([a / b for a, b in zip(rps, fast, strict=True)]),
            "p50_ms": median([r["p50_ms"] for r in runs[name]]),
            "p99_ms": median([r["p99_ms"] for r in runs[name]]),
            "errors": sum(r["errors"] for r in runs[name]),
        }
        log(
            f"    P3 {label:22} {name:7} {out[name]['rps']:8.0f} req/s  "
            f"{out[name]['ratio']:.2f}× no-op  {out[name]['ratio_fast']:.2f}× fast no-op  "
            f"p99 {out[name]['p99_ms']:.1f} ms  "
            f"errors {out[name]['errors']:.0f}"
        )
    return out


WEBDIS = {
    "GET": ("GET", None, f'"/GET/key-" .. (i % {KEYS})'),
    "SET": ("GET", None, f'"/SET/key-" .. (i % {KEYS}) .. "/value"'),
    "APPEND (RPUSH)": ("GET", None, f'"/RPUSH/list-" .. (i % {KEYS}) .. "/item"'),
}


def _webdis(settings: Settings, seconds: float) -> dict[str, Any] | None:
    if not (shutil.which("webdis") and shutil.which("redis-server") and wrk_available()):
        log("    webdis, redis-server or wrk missing: webdis skipped")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        rport, wport = free_port(), free_port()
        redis = Proc(
            [
                "redis-server",
                "--port",
                str(rport),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ]
        )
        conf = Path(tmp) / "webdis.json"
        conf.write_text(
            json.dumps(
                {
                    "redis_host": "127.0.0.1",
                    "redis_port": rport,
                    "http_host": "127.0.0.1",
                    "http_port": wport,
                    "threads": 1,
                    "pool_size": 8,
                    "daemonize": False,
                    "database": 0,
                    "verbosity": 0,
                    "logfile": os.path.join(tmp, "webdis.log"),
                }
            )
        )
        web = None
        try:
            wait_port(rport)
            web = Proc(["webdis", str(conf)], cwd=tmp)
            wait_port(wport)
            runs = interleaved(
                {
                    n: (
                        lambda n=n: wrk(
                            f"http://127.0.0.1:{wport}", seconds, CONNECTIONS, _lua(*WEBDIS[n])
                        )
                    )
                    for n in WEBDIS
                },
                settings.rounds,
            )
        finally:
            if web is not None:
                web.stop()
            redis.stop()
    out: dict[str, Any] = {"runs": runs}
    for name in WEBDIS:
        out[name] = {
            "rps": median([r["rps"] for r in runs[name]]),
            "p99_ms": median([r["p99_ms"] for r in runs[name]]),
        }
        log(f"    P3 webdis + Redis        {name:14} {out[name]['rps']:8.0f} req/s")
    return out


def p3_rps(settings: Settings) -> list[Row]:
    seconds = 2.0 if settings.quick else 4.0
    results: dict[str, Any] = {
        "generator": "wrk -t1 -c32" if wrk_available() else "python asyncio, 32 connections",
        "seconds": seconds,
        "rounds": settings.rounds,
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("SQLite", os.path.join(tmp, "inline.db"), ["--store-calls", "inline"])]
        if not settings.quick:
            backends.append(
                (
                    "SQLite (thread pool)",
                    os.path.join(tmp, "thread.db"),
                    ["--store-calls", "thread"],
                )
            )
        for label, db, extra in backends:
            results[label] = _backend(label, db, extra, settings, seconds)
        with postgres(settings) as pg:
            if pg:
                results["PostgreSQL"] = _backend("PostgreSQL", pg, [], settings, seconds)
    results["webdis"] = _webdis(settings, seconds)
    # Issue 22's targets: PostgreSQL GET/SET/APPEND >= 0.8/0.5/0.5, SQLite SET/APPEND >= 0.7/0.6.
    sqlite = {"GET": 0.8, "SET": 0.7, "APPEND": 0.6}
    targets = {
        "SQLite": sqlite,
        "SQLite (thread pool)": sqlite,
        "PostgreSQL": {"GET": 0.8, "SET": 0.5, "APPEND": 0.5},
    }
    for label in ("SQLite", "SQLite (thread pool)", "PostgreSQL"):
        if label not in results:
            continue
        r = results[label]
        for name, target in targets[label].items():
            rows.append(
                Row(
                    "P3",
                    f"server {name} req/s, 1 worker, {label}",
                    r[name]["ratio"],
                    "×",
                    f"no-op route, same process = {r['no-op']['rps']:,.0f} req/s",
                    f"≥ {target}×" if target else "—",
                    (r[name]["ratio"] >= target) if target else None,
                    note=f"{r[name]['rps']:,.0f} req/s, p99 {r[name]['p99_ms']:.1f} ms",
                    details=r if name == "GET" else {},
                )
            )
        for name in targets[label]:
            rows.append(
                Row(
                    "P3f",
                    f"server {name} req/s, 1 worker, {label}, over the no-op served as the key"
                    " routes are (context)",
                    r[name]["ratio_fast"],
                    "×",
                    f"`/_noop/fast`, same process = {r['no-op (fast path)']['rps']:,.0f} req/s"
                    f" ({r['no-op (fast path)']['ratio']:.2f}× `/_noop`)",
                    "—",
                    None,
                    note="the key routes skip FastAPI's router; this is their own floor",
                )
            )
    web = results.get("webdis")
    if web and "SQLite" in results:
        for name, wname in (("GET", "GET"), ("SET", "SET"), ("APPEND", "APPEND (RPUSH)")):
            ratio = results["SQLite"][name]["rps"] / web[wname]["rps"]
            rows.append(
                Row(
                    "P3w",
                    f"botwire {name} (SQLite) vs webdis + Redis {wname} (context)",
                    ratio,
                    "×",
                    f"webdis = {web[wname]['rps']:,.0f} req/s",
                    "—",
                    None,
                    note="webdis: 1 thread, plus the redis-server process",
                )
            )
    if rows:
        rows[0].details = results
    return rows


if __name__ == "__main__":
    import sys

    s = Settings(quick="--full" not in sys.argv, rounds=2, out=Path(os.devnull))
    for row in p3_rps(s):
        print(row.id, row.figure, f"{row.value:.2f}{row.unit}", row.baseline, row.met, row.note)
