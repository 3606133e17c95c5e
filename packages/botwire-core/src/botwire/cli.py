"""The ``botwire`` command: inspect and move memory from a shell.

    botwire set user-42 preferences '{"tone": "brief"}'
    botwire get user-42 preferences
    botwire ls user-42 --prefix chat
    botwire export user-42 > backup.jsonl && botwire import user-43 < backup.jsonl

Exit codes: 0 ok, 1 key not found, 2 bad usage or input, 3 refused by the store (conflict,
quota, type, size, auth), 4 backend unavailable or the URL does not reach botwire (Misrouted).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._errors import BotWireError, InvalidArgument, Misrouted, Unavailable
from ._memory import Memory

__all__ = ["main"]

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE = 1, 2, 3, 4
_PROGRESS_EVERY = 1000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire",
        description="Read and write botwire memory. The backend is --url, else BOTWIRE_URL, "
        "else the embedded store at ~/.botwire/memory.db.",
    )
    p.add_argument("--url", help="http(s)://server[:port] or sqlite:///path (default: BOTWIRE_URL)")
    p.add_argument("--token", help="bearer token for the server (default: BOTWIRE_TOKEN)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("get", help="print a value as JSON")
    g.add_argument("namespace")
    g.add_argument("key")
    g.add_argument("--raw", action="store_true", help="print a string value without quotes")

    s = sub.add_parser("set", help="store a JSON value (or a plain string with --string)")
    s.add_argument("namespace")
    s.add_argument("key")
    s.add_argument("value", help="JSON text, e.g. 5, '\"text\"', '{\"a\": 1}'; - reads stdin")
    s.add_argument("--string", action="store_true", help="store VALUE as a string, not JSON")
    s.add_argument("--ttl", type=float, help="expire after this many seconds")

    r = sub.add_parser("rm", help="delete keys")
    r.add_argument("namespace")
    r.add_argument("keys", nargs="+")

    ls = sub.add_parser("ls", help="list keys")
    ls.add_argument("namespace")
    ls.add_argument("--prefix", default="")

    u = sub.add_parser("usage", help="keys, bytes, writes today and limits")
    u.add_argument("namespace")

    e = sub.add_parser("export", help="write every entry as JSON Lines to stdout")
    e.add_argument("namespace")

    i = sub.add_parser("import", help="read JSON Lines ({'key', 'value'[, 'ttl']}) from stdin")
    i.add_argument("namespace")
    return p


def _progress(done: int, what: str, final: bool = False) -> None:
    if final or done % _PROGRESS_EVERY == 0:
        end = "\n" if final else "\r"
        print(f"botwire: {what} {done} entries", file=sys.stderr, end=end, flush=True)


def _export(memory: Memory) -> None:
    done = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal done
        values = memory.get_many(batch)
        for key in batch:
            if key in values:
                sys.stdout.write(json.dumps({"key": key, "value": values[key]}, ensure_ascii=False))
                sys.stdout.write("\n")
                done += 1
                _progress(done, "exported")
        batch.clear()

    for key in memory.iter_keys():
        batch.append(key)
        if len(batch) == 100:
            flush()
    flush()
    _progress(done, "exported", final=True)


def _import(memory: Memory) -> None:
    done = 0
    pending: dict[str, Any] = {}

    def flush() -> None:
        if pending:
            memory.set_many(pending)
            pending.clear()

    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key, value = record["key"], record["value"]
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument(
                f"botwire: line {number} of the input is not a JSON object with 'key' and "
                "'value' (the format `botwire export` writes)."
            ) from None
        if record.get("ttl") is not None:
            flush()
            memory.set(key, value, ttl=record["ttl"])
        else:
            pending[key] = value
            if len(pending) == 100:
                flush()
        done += 1
        _progress(done, "imported")
    flush()
    _progress(done, "imported", final=True)


def _run(args: argparse.Namespace) -> int:
    with Memory(args.namespace, url=args.url, token=args.token) as memory:
        if args.command == "get":
            entry = memory.entry(args.key)
            if entry is None:
                print(
                    f"botwire: no key {args.key!r} in namespace {args.namespace!r}", file=sys.stderr
                )
                return EXIT_NOT_FOUND
            if args.raw and isinstance(entry.value, str):
                print(entry.value)
            else:
                print(json.dumps(entry.value, ensure_ascii=False, indent=2))
        elif args.command == "set":
            text = sys.stdin.read() if args.value == "-" else args.value
            if args.string:
                value: Any = text
            else:
                try:
                    value = json.loads(text)
                except ValueError:
                    print(
                        f"botwire: {text[:60]!r} is not JSON; quote strings ('\"text\"') or pass "
                        "--string to store the text as it is.",
                        file=sys.stderr,
                    )
                    return EXIT_USAGE
            version = memory.set(args.key, value, ttl=args.ttl)
            print(f"version {version}", file=sys.stderr)
        elif args.command == "rm":
            n = memory.delete_many(args.keys)
            print(f"deleted {n} of {len(args.keys)}", file=sys.stderr)
            return 0 if n == len(args.keys) else EXIT_NOT_FOUND
        elif args.command == "ls":
            for key in memory.iter_keys(args.prefix):
                print(key)
        elif args.command == "usage":
            u = memory.usage()
            print(
                json.dumps(
                    {
                        "namespace": u.namespace,
                        "keys": u.keys,
                        "bytes": u.bytes,
                        "writes_today": u.writes_today,
                        "resets_at": u.resets_at,
                        "limits": u.limits.as_dict(),
                    },
                    indent=2,
                )
            )
        elif args.command == "export":
            _export(memory)
        elif args.command == "import":
            _import(memory)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (Unavailable, Misrouted) as exc:  # down, or the URL does not reach botwire's API
        print(str(exc), file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (ValueError, TypeError) as exc:  # InvalidKey, InvalidNamespace, NotSerializable...
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except BotWireError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
