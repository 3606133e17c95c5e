"""The access log's cost: the no-op route of a server as installed (access log on, its lines
to a file) against the same server with ``--no-access-log``, alternated, ``wrk -t1 -c32``.

Every other figure runs the server with ``--no-access-log`` (``_common.server``); this one says
what the default adds to each request (docs/benchmarks-log.md, "The server as installed").

    uv run python benchmarks/access_log.py [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import log, median, wrk, wrk_available
from support.server import running_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if not wrk_available():
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                flags = () if mode == "on" else ("--no-access-log",)
                with running_server(*flags, database=Path(tmp) / f"{mode}{r}.db") as srv:
                    url = srv.url + "/_noop/fast"
                    wrk(url, 2.0, 32)  # warm-up
                    rates[mode].append(wrk(url, args.seconds, 32)["rps"])
                log(f"round {r} access log {mode}: {rates[mode][-1]:,.0f} req/s")
    on, off = median(rates["on"]), median(rates["off"])
    cost = (1 / on - 1 / off) * 1e6
    print(
        f"access log on: {on:,.0f} req/s = {on / off:.2f}x of --no-access-log ({off:,.0f} "
        f"req/s); ~{cost:.0f} us of the server's time per request"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
