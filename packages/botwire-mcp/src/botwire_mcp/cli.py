"""``botwire-mcp``: serve botwire memory over MCP (stdio or stateless streamable HTTP).

botwire-mcp                                   # stdio, for Claude Desktop / Cursor
botwire-mcp --transport http --port 8766      # streamable HTTP on 127.0.0.1
botwire-mcp import memory.jsonl               # migrate a server-memory graph
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire-mcp",
        description="An MCP server whose memory is botwire: persistent, shared, with TTL.",
    )
    p.add_argument(
        "--namespace",
        default=os.environ.get("BOTWIRE_MCP_NAMESPACE", "mcp"),
        help="namespace every tool uses (env BOTWIRE_MCP_NAMESPACE; default 'mcp')",
    )
    p.add_argument(
        "--allow-namespace-arg",
        action="store_true",
        default=_env_flag("BOTWIRE_MCP_ALLOW_NAMESPACE_ARG"),
        help="let each call pick its namespace with a 'namespace' argument",
    )
    p.add_argument("--url", default=None, help="botwire backend (default: env BOTWIRE_URL)")
    sub = p.add_subparsers(dest="command")
    imp = sub.add_parser("import", help="import a server-memory memory.jsonl file")
    imp.add_argument("file", help="path of memory.jsonl")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--path", default="/mcp", help="HTTP path of the MCP endpoint")
    p.add_argument(
        "--token-secret",
        default=None,
        help="HS256 secret of botwire-server tokens (env BOTWIRE_TOKEN_SECRET): HTTP calls then "
        "need 'Authorization: Bearer <token>' covering the namespace",
    )
    p.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve HTTP without tokens on a non-loopback address (not recommended)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from botwire import BotWireError

    try:
        if args.command == "import":
            return _import(args)
        if args.transport == "stdio":
            from ._server import ServerConfig, build_server

            build_server(
                ServerConfig(
                    namespace=args.namespace,
                    url=args.url,
                    allow_namespace_arg=args.allow_namespace_arg,
                )
            ).run()
            return 0
        return _serve_http(args)
    except BotWireError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _import(args: argparse.Namespace) -> int:
    import anyio

    from botwire import AsyncMemory

    from ._importer import import_jsonl

    async def run() -> None:
        async with AsyncMemory(args.namespace, url=args.url) as memory:
            report = await import_jsonl(args.file, memory)
        print(
            f"botwire-mcp: imported {args.file} into namespace {args.namespace!r}: "
            f"{report.entities} entities and {report.relations} relations created, "
            f"{report.observations} observations added to existing entities"
        )

    anyio.run(run)
    return 0


def _serve_http(args: argparse.Namespace) -> int:
    from ._auth import is_loopback

    secret = args.token_secret or os.environ.get("BOTWIRE_TOKEN_SECRET") or None
    loopback = is_loopback(args.host)
    if secret is None and not loopback and not args.allow_anonymous:
        print(
            f"botwire-mcp: refusing to serve HTTP on {args.host!r} without auth: anyone who can "
            "reach it could read and write namespace "
            f"{args.namespace!r}. Pass --token-secret (or BOTWIRE_TOKEN_SECRET) to require "
            "botwire tokens, bind 127.0.0.1, or pass --allow-anonymous if a proxy in front "
            "authenticates.",
            file=sys.stderr,
        )
        return 2
    import uvicorn  # only now: a refused start imports none of the server stack

    from ._auth import Authorizer, BearerAuth
    from ._compat import http_app
    from ._server import ServerConfig, build_server

    server = build_server(
        ServerConfig(
            namespace=args.namespace,
            url=args.url,
            allow_namespace_arg=args.allow_namespace_arg,
            auth=secret is not None,
        )
    )
    app = http_app(server, args.path, loopback=loopback)
    if secret is not None:
        app = BearerAuth(app, Authorizer(secret))
    mode = "tokens required" if secret else "anonymous"
    print(
        f"botwire-mcp: streamable HTTP (stateless) on http://{args.host}:{args.port}{args.path}, "
        f"namespace {args.namespace!r}, {mode}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
