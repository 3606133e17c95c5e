"""The ``botwire`` command: inspect and move memory from a shell.

    botwire set user-42 preferences '{"tone": "brief"}'
    botwire get user-42 preferences
    botwire ls user-42 --prefix chat
    botwire export user-42 > backup.jsonl && botwire import user-43 < backup.jsonl
    botwire queue claim pipeline jobs --wait 20   # botwire/_queuecli.py
    botwire watch user-42 task/result --timeout 60    # one JSON line per change

Exit codes: 0 ok, 1 key not found, 2 bad usage or input, 3 refused by the store (conflict,
quota, type, size, auth), 4 backend unavailable or the URL does not reach botwire (Misrouted).
``export``/``import`` live in :mod:`botwire._transfer`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._errors import BotWireError, Misrouted, Unavailable
from ._memory import Memory
from ._queuecli import add_queue_parser, run_queue
from ._transfer import EXPORT_HELP, IMPORT_HELP, export_entries, import_entries

__all__ = ["main"]

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE = 1, 2, 3, 4


class _Version(argparse.Action):
    """``--version``: the installed botwire-core's version, looked up only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("botwire-core")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from . import __version__ as installed
        print(f"botwire {installed} (botwire-core, Python {sys.version.split()[0]})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire",
        description="Read and write botwire memory. The backend is --url, else BOTWIRE_URL, "
        "else the embedded store at ~/.botwire/memory.db.",
    )
    p.add_argument("--url", help="http(s)://server[:port] or sqlite:///path (default: BOTWIRE_URL)")
    p.add_argument("--token", help="bearer token for the server (default: BOTWIRE_TOKEN)")
    p.add_argument("--version", action=_Version)
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

    w = sub.add_parser(
        "watch",
        help="print changes of a key (or of the keys under --prefix) as JSON lines, following",
        description="Print the key's current entry (unless --after is given), then one JSON "
        'line per change ({"key", "value", "version", "deleted", "updated_at"}; a delete: '
        '"deleted": true), until Ctrl-C or --timeout. With --prefix instead of KEY: every key '
        "under the prefix.",
    )
    w.add_argument("namespace")
    w.add_argument("key", nargs="?", help="the key to watch (or use --prefix)")
    w.add_argument("--prefix", help="watch every key starting with this ('' = the namespace)")
    w.add_argument("--after", type=int, help="only changes after this version")
    w.add_argument("--timeout", type=float, help="stop after this many seconds (default: never)")

    u = sub.add_parser("usage", help="keys, bytes, writes today and limits")
    u.add_argument("namespace")

    pol = sub.add_parser("policy", help="show or change a namespace's retention policy")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, metavar="get|set")
    pol_sub.add_parser("get", help="print the policy in force as JSON").add_argument("namespace")
    ps = pol_sub.add_parser(
        "set",
        help="change fields (an admin token over HTTP); others keep their value",
        description="SECONDS take a unit (90m, 12h, 30d, 2w); 0 turns a rule off for this "
        "namespace, 'default' follows the server's default again.",
    )
    ps.add_argument("namespace")
    for flag, metavar in (("--default-ttl", "SECONDS"), ("--max-list-len", "N")):
        ps.add_argument(flag, type=_policy_value, metavar=metavar, default=argparse.SUPPRESS)
    ps.add_argument("--max-idle", type=_policy_value, metavar="SECONDS", default=argparse.SUPPRESS)

    raw = argparse.RawDescriptionHelpFormatter
    e = sub.add_parser(
        "export",
        help="write every entry (with its expiry) as JSON Lines to stdout",
        description=EXPORT_HELP,
        formatter_class=raw,
    )
    e.add_argument("namespace")

    i = sub.add_parser(
        "import",
        help="write JSON Lines from stdin, in atomic chunks (re-runnable)",
        description=IMPORT_HELP,
        formatter_class=raw,
    )
    i.add_argument("namespace")
    add_queue_parser(sub)
    return p


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _policy_value(text: str) -> float | None:
    """A ``policy set`` value: ``default`` (None: the server's default), or a number with an
    optional unit (s, m, h, d, w); range and type are the store's check (``check_policy``)."""
    raw = text.strip().lower()
    if raw in ("default", "null"):
        return None
    unit = _UNITS.get(raw[-1:])
    try:
        return float(raw[:-1] if unit else raw) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number (3600, or 90m, 12h, 30d), 0 for none, or 'default'"
        ) from None


def _policy(memory: Memory, args: argparse.Namespace) -> int:
    if args.policy_command == "set":
        names = ("default_ttl", "max_list_len", "max_idle")
        given = {name: getattr(args, name) for name in names if hasattr(args, name)}
        if "max_list_len" in given and given["max_list_len"] is not None:
            length = given["max_list_len"]
            given["max_list_len"] = int(length) if float(length).is_integer() else length
        if not given:
            print(
                "botwire: policy set needs --default-ttl, --max-list-len or --max-idle.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        policy = memory.set_policy(**given)
    else:
        policy = memory.policy()
    print(json.dumps({"namespace": memory.namespace, "policy": policy.as_dict()}, indent=2))
    return 0


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
                except (ValueError, RecursionError) as exc:
                    why = "nests too deeply" if isinstance(exc, RecursionError) else "is not JSON"
                    print(
                        f"botwire: {text[:60]!r} {why}; quote strings ('\"text\"') or pass "
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
                        "policy": u.policy.as_dict(),
                    },
                    indent=2,
                )
            )
        elif args.command == "policy":
            return _policy(memory, args)
        elif args.command == "watch":
            return _watch(memory, args)
        elif args.command == "export":
            export_entries(memory, sys.stdout, sys.stderr)
        elif args.command == "import":
            return import_entries(memory, sys.stdin.buffer, sys.stderr, exit_code)
        elif args.command == "queue":
            return run_queue(memory, args)
    return 0


def _watch(memory: Memory, args: argparse.Namespace) -> int:
    """``botwire watch``: follow a key or a prefix until Ctrl-C or ``--timeout``."""
    import time

    if (args.key is None) == (args.prefix is None):
        print("botwire: watch takes a KEY or --prefix P (not both).", file=sys.stderr)
        return EXIT_USAGE
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    after = args.after

    def show(entry: Any) -> None:
        line = {
            "key": entry.key,
            "value": entry.value,
            "version": entry.version,
            "deleted": entry.deleted,
            "updated_at": entry.updated_at,
        }
        print(json.dumps(line, ensure_ascii=False), flush=True)

    try:
        while True:
            left = 25.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if args.prefix is not None:
                changes = memory.watch_prefix(args.prefix, after=after, timeout=min(left, 25.0))
                for entry in changes.entries:
                    show(entry)
                after = changes.version
            else:
                found = memory.watch(args.key, after=after, timeout=min(left, 25.0))
                if found is not None:
                    show(found)
                    after = found.version
                elif after is None:  # absent and nothing came: wait on from here
                    after = memory.watch_prefix(args.key).version
            if deadline is not None and time.monotonic() >= deadline:
                return 0
    except KeyboardInterrupt:
        return 0


def exit_code(exc: BaseException) -> int:
    """The exit code of an error raised by an operation (see the module docstring)."""
    if isinstance(exc, (Unavailable, Misrouted)):  # down, or the URL does not reach botwire
        return EXIT_UNAVAILABLE
    if isinstance(exc, (ValueError, TypeError)):  # InvalidKey, InvalidNamespace, NotSerializable
        return EXIT_USAGE
    return EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (BotWireError, ValueError, TypeError) as exc:
        print(str(exc), file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
