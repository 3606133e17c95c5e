"""``botwire queue put|claim|ack|nack|stats|dead``: the hand-off queue from a shell.

    botwire queue put pipeline jobs '{"doc": "report.pdf"}' --delay 10
    botwire queue claim pipeline jobs --visibility 60 --wait 20   # JSON with "receipt"
    botwire queue ack pipeline jobs 0661832c6d37cb715bfeaa.6

``claim`` exits 1 when nothing was claimable (within ``--wait``), like ``get`` of an absent key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._memory import Memory

__all__ = ["add_queue_parser", "run_queue"]

EXIT_EMPTY, EXIT_USAGE = 1, 2


def add_queue_parser(sub: Any) -> None:
    """Add ``queue`` and its subcommands to the ``botwire`` parser's subparsers."""
    q = sub.add_parser("queue", help="hand-off queue: put, claim, ack, nack, stats, dead")
    qs = q.add_subparsers(dest="queue_command", required=True, metavar="QUEUE_COMMAND")

    def named(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = qs.add_parser(name, help=help)
        p.add_argument("namespace")
        p.add_argument("name", help="the queue's name")
        p.add_argument("--max-claims", type=int, default=5, help="claims before dead (5)")
        return p

    put = named("put", "add an item (JSON; - reads stdin); prints its id")
    put.add_argument("item", help='JSON text, e.g. \'{"doc": "a.pdf"}\'')
    put.add_argument("--delay", type=float, help="seconds before it can be claimed")
    put.add_argument("--idempotency-key", help="a repeat with this key adds nothing (24 h)")
    claim = named("claim", "claim an item; prints {id, item, receipt, claims, expires_at}")
    claim.add_argument("--visibility", type=float, default=30.0, help="seconds (30)")
    claim.add_argument("--wait", type=float, default=0.0, help="seconds to wait for one (0)")
    named("ack", "remove a claimed item for good").add_argument("receipt")
    nack = named("nack", "give a claimed item back")
    nack.add_argument("receipt")
    nack.add_argument("--delay", type=float, help="seconds before it can be claimed again")
    named("stats", "ready, claimed, delayed and dead counts as JSON")
    named("dead", "the dead letters as JSON Lines")


def run_queue(memory: Memory, args: argparse.Namespace) -> int:
    """Run one ``botwire queue`` subcommand; the exit code (errors propagate to ``main``)."""
    q = memory.queue(args.name, max_claims=args.max_claims)
    cmd = args.queue_command
    if cmd == "put":
        text = sys.stdin.read() if args.item == "-" else args.item
        try:
            item = json.loads(text)
        except (ValueError, RecursionError) as exc:
            why = "nests too deeply" if isinstance(exc, RecursionError) else "is not JSON"
            print(f"botwire: {text[:60]!r} {why}; quote strings ('\"text\"').", file=sys.stderr)
            return EXIT_USAGE
        print(q.put(item, delay=args.delay, idempotency_key=args.idempotency_key))
    elif cmd == "claim":
        got = q.claim(visibility=args.visibility, wait=args.wait)
        if got is None:
            print(f"botwire: nothing to claim in queue {args.name!r}", file=sys.stderr)
            return EXIT_EMPTY
        out = {"id": got.id, "item": got.item, "receipt": got.receipt, "claims": got.claims}
        print(json.dumps({**out, "expires_at": got.expires_at}, ensure_ascii=False))
    elif cmd == "ack":
        q.ack(args.receipt)
    elif cmd == "nack":
        q.nack(args.receipt, delay=args.delay)
    elif cmd == "stats":
        s = q.stats()
        print(
            json.dumps(
                {"ready": s.ready, "claimed": s.claimed, "delayed": s.delayed, "dead": s.dead}
            )
        )
    elif cmd == "dead":
        for d in q.dead():
            print(json.dumps({"id": d.id, "item": d.item, "claims": d.claims}, ensure_ascii=False))
    return 0
