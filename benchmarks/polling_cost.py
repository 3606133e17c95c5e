"""What idle held polls cost a replica that polls PostgreSQL for other replicas' writes.

Behind PgBouncer in transaction mode with no ``--pg-listen-url``, a replica looks at the
high-water versions of every namespace someone waits on, every 0.1 s while anyone waits. This
starts a throwaway cluster, a PgBouncer and one such replica, holds ``--polls`` long-polls on
as many namespaces (one each, nothing written meanwhile) and reports the CPU of the server,
PostgreSQL and PgBouncer over ``--seconds``, as shares of a core (the idle baseline: zero).

    uv run python benchmarks/polling_cost.py [--polls 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _common import Settings, postgres, server
from pg_reference import postgres_cpu, postmaster_pid, proc_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from support.pgbouncer import running_pgbouncer

    settings = Settings(quick=False, rounds=1, out=Path("."))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres(settings))
        if url is None:
            return 1
        bouncer = stack.enter_context(running_pgbouncer(url, pool_size=20))
        flags = ("--pg-pooler", "transaction", "--watch-hold", "120")
        srv = stack.enter_context(
            server(*flags, "--max-watchers", str(max(args.polls, 1000)), database=bouncer.url(url))
        )
        after = [
            httpx.put(f"{srv.url}/v1/namespaces/idle-{i}/keys/k", json={"value": i}).json()[
                "version"
            ]
            for i in range(args.polls)
        ]
        socks = []
        for i, version in enumerate(after):
            sock = stack.enter_context(socket.create_connection((srv.host, srv.port)))
            sock.sendall(
                f"GET /v1/namespaces/idle-{i}/changes?after={version}&wait=120 HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{srv.port}\r\n\r\n".encode()
            )
            socks.append(sock)
        time.sleep(3.0)
        postmaster = postmaster_pid(url)
        if postmaster is None:
            return 1  # PostgreSQL runs elsewhere: its CPU cannot be read here
        parts: dict[str, Callable[[], float]] = {
            "server": lambda: proc_cpu(srv.proc.pid),
            "PostgreSQL": lambda: postgres_cpu(postmaster),
            "PgBouncer": lambda: proc_cpu(bouncer.proc.pid),
        }
        before = {name: read() for name, read in parts.items()}
        time.sleep(args.seconds)
        used = {name: (read() - before[name]) / args.seconds for name, read in parts.items()}
        held = next(
            line.split()[1]
            for line in httpx.get(f"{srv.url}/metrics").text.splitlines()
            if line.startswith("botwire_watchers ")
        )
    shares = ", ".join(f"{name} {share:.0%}" for name, share in used.items())
    print(f"{float(held):.0f} idle polls on as many namespaces, polling: {shares} of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
