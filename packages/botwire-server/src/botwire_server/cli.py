"""The ``botwire-server`` command: serve the API, or mint tokens.

Examples::

    botwire-server                                   # 127.0.0.1:8765, ./botwire.db
    botwire-server --host 0.0.0.0 --token-secret-file /run/secrets/botwire_token \
        --database-url-file /run/secrets/botwire_db
    botwire-server token create --ns 'tenant-42-*' --read-only --expires 30d \
        --secret-file /run/secrets/botwire_token
    botwire-server backup --database ./botwire.db /backups/botwire.db

Secrets given in argv are visible to every local user (``ps``); the server warns about them.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence

from . import startup
from .settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConfigError,
    Settings,
    database_password,
    parse_seconds,
    read_secret_file,
)

__all__ = ["build_parser", "main"]

log = logging.getLogger("botwire_server")


def _nonneg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0 = unlimited)")
    return value


def _seconds(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return parse_seconds(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire-server",
        description="Serve botwire memory over HTTP (API v1 + the original /memory routes). "
        "Subcommands: 'botwire-server token create --help', 'botwire-server backup --help'.",
    )
    p.add_argument(
        "--host", default=None, help=f"bind address (default {DEFAULT_HOST}; env BOTWIRE_HOST)"
    )
    p.add_argument(
        "--port", type=int, default=None, help=f"port (default {DEFAULT_PORT}; env BOTWIRE_PORT)"
    )
    p.add_argument(
        "--database",
        default=None,
        help="SQLite path or sqlite:/// URL, or postgresql://... "
        "(default ./botwire.db; env BOTWIRE_DATABASE_URL)",
    )
    p.add_argument(
        "--database-url-file",
        default=None,
        metavar="PATH",
        help="read the database URL from this file, e.g. a Docker/Kubernetes "
        "secret (env BOTWIRE_DATABASE_URL_FILE)",
    )
    p.add_argument(
        "--pg-pooler",
        default=None,
        choices=["auto", "transaction", "none"],
        help="PostgreSQL through a connection pooler: 'transaction' for PgBouncer's "
        "pool_mode=transaction (no prepared statements; LISTEN needs --pg-listen-url), 'none' "
        "for a direct connection or session pooling, 'auto' (default) probes at start "
        "(env BOTWIRE_PG_POOLER)",
    )
    p.add_argument(
        "--pg-listen-url",
        default=None,
        metavar="URL",
        help="a DIRECT postgresql:// URL of the same database, bypassing PgBouncer, for the "
        "connection that LISTENs for other replicas' writes (watch); without it, behind a "
        "transaction pooler, replicas poll (env BOTWIRE_PG_LISTEN_URL)",
    )
    p.add_argument(
        "--pg-listen-url-file",
        default=None,
        metavar="PATH",
        help="read --pg-listen-url from this file (env BOTWIRE_PG_LISTEN_URL_FILE)",
    )
    p.add_argument(
        "--token-secret",
        default=None,
        help="HS256 secret: every request then needs a Bearer token "
        "(env BOTWIRE_TOKEN_SECRET); visible in 'ps', prefer --token-secret-file",
    )
    p.add_argument(
        "--token-secret-file",
        default=None,
        metavar="PATH",
        help="read the token secret from this file (env BOTWIRE_TOKEN_SECRET_FILE)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="a web origin allowed to call the API from a browser, e.g. "
        "https://console.example.com (repeatable; '*' = any; env "
        "BOTWIRE_CORS_ORIGINS, comma-separated). Other origins get 403",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name the server answers (repeatable; '*' = any; env "
        "BOTWIRE_ALLOWED_HOSTS). Default for an anonymous loopback server: "
        "localhost, 127.0.0.1, ::1 and the bound address",
    )
    p.add_argument(
        "--max-response-bytes",
        type=_nonneg,
        default=None,
        help="JSON bytes one response may carry, batch answers included "
        "(default 16 MiB; 0 = unlimited)",
    )
    p.add_argument(
        "--max-json-elements",
        type=int,
        default=None,
        help="JSON arrays, objects and members one request body may hold (default 1000000)",
    )
    p.add_argument(
        "--max-append-items",
        type=int,
        default=None,
        help="items one append may add (default 10000)",
    )
    p.add_argument(
        "--max-list-length",
        type=_nonneg,
        default=None,
        help="items a list may hold (default 100000; 0 = unlimited)",
    )
    p.add_argument(
        "--default-ttl",
        type=_seconds("--default-ttl"),
        default=None,
        metavar="SECONDS",
        help="retention: a TTL for writes without one, in every namespace without a policy of "
        "its own (3600, 90m, 12h, 30d; default 0 = none; env BOTWIRE_DEFAULT_TTL)",
    )
    p.add_argument(
        "--default-max-list-len",
        type=_nonneg,
        default=None,
        metavar="N",
        help="retention: items a list keeps, each append trimming it from the front (a larger "
        "max_len is lowered; default 0 = none; env BOTWIRE_DEFAULT_MAX_LIST_LEN)",
    )
    p.add_argument(
        "--max-idle",
        type=_seconds("--max-idle"),
        default=None,
        metavar="SECONDS",
        help="retention: housekeeping clears a namespace not written for this long (30d...; "
        "default 0 = never; env BOTWIRE_MAX_IDLE)",
    )
    p.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=None,
        help="bytes of request bodies parsed and applied at once; others wait (default 64 MiB)",
    )
    p.add_argument(
        "--watch-hold",
        type=float,
        default=None,
        help="seconds a /changes long-poll (watch) is held at most (default 20; keep it below"
        " your load balancer's idle timeout)",
    )
    p.add_argument(
        "--max-watchers",
        type=int,
        default=None,
        help="long-polls waiting at once per server (default 1000; beyond: 429)",
    )
    p.add_argument(
        "--max-watchers-per-namespace",
        type=int,
        default=None,
        help="long-polls waiting at once per namespace (default 100; beyond: 429)",
    )
    p.add_argument(
        "--tombstone-retention",
        type=float,
        default=None,
        help="seconds deletions are reported to watchers (default 3600); an older resume"
        " point gets 410 compacted",
    )
    p.add_argument(
        "--allow-anonymous",
        action="store_const",
        const=True,
        default=None,
        help="allow an unauthenticated server on a non-loopback address",
    )
    p.add_argument(
        "--writes-per-day",
        type=_nonneg,
        default=None,
        help="writes per namespace per UTC day (0 = unlimited)",
    )
    p.add_argument(
        "--max-namespace-bytes",
        type=_nonneg,
        default=None,
        help="bytes per namespace (0 = unlimited)",
    )
    p.add_argument(
        "--max-value-bytes",
        type=_nonneg,
        default=None,
        help="bytes per value (default 1 MiB; 0 = unlimited)",
    )
    p.add_argument(
        "--max-keys", type=_nonneg, default=None, help="keys per namespace (0 = unlimited)"
    )
    p.add_argument(
        "--free-tier",
        action="store_const",
        const=True,
        default=None,
        help="the hosted free tier: anonymous, 1000 writes/day and 50 MB per "
        "namespace, unlimited reads",
    )
    p.add_argument(
        "--log-level", default=None, choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument(
        "--synchronous",
        default=None,
        type=str.upper,
        choices=["NORMAL", "FULL", "EXTRA"],
        help="SQLite synchronous mode (default NORMAL; FULL survives power loss)",
    )
    p.add_argument(
        "--store-calls",
        default=None,
        choices=["inline", "thread"],
        help="call SQLite on the event loop (inline, default) or in threads",
    )
    p.add_argument(
        "--testing-clock", action="store_const", const=True, default=None, help=argparse.SUPPRESS
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument(
        "--log-format",
        default=None,
        choices=["human", "json"],
        help="human: plain lines (the default on a terminal); json: one JSON object "
        "per line (the default otherwise, e.g. under systemd or Docker; env "
        "BOTWIRE_LOG_FORMAT)",
    )
    return p


def build_token_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botwire-server token create", description="Print a signed token (JWT, HS256)."
    )
    p.add_argument(
        "--ns",
        action="append",
        required=True,
        metavar="PATTERN",
        help="namespace glob the token covers, e.g. 'tenant-42-*' (repeatable)",
    )
    perm = p.add_mutually_exclusive_group()
    perm.add_argument("--read-only", action="store_true", help="reads only")
    perm.add_argument("--admin", action="store_true", help="admin permission")
    p.add_argument(
        "--expires",
        default="30d",
        help="lifetime: 30d, 12h, 90m, 3600 (seconds) or 'never' (default 30d)",
    )
    p.add_argument(
        "--secret",
        default=None,
        help="the server's secret "
        "(default env BOTWIRE_TOKEN_SECRET); visible in 'ps', prefer --secret-file",
    )
    p.add_argument(
        "--secret-file",
        default=None,
        metavar="PATH",
        help="read the server's secret from this file (or env BOTWIRE_TOKEN_SECRET_FILE)",
    )
    return p


ARGV_WARNING = (
    "botwire-server: warning: {what} on the command line is visible to every local "
    "user (ps, /proc/PID/cmdline); use {fix} or the environment instead."
)


def _token(argv: Sequence[str]) -> int:
    from .auth import mint_token, parse_duration

    if not argv or argv[0] != "create":
        print(
            "usage: botwire-server token create --ns PATTERN [--read-only|--admin] "
            "[--expires 30d] [--secret S]",
            file=sys.stderr,
        )
        return 2
    args = build_token_parser().parse_args(list(argv[1:]))
    try:
        if args.secret_file:
            secret = read_secret_file(args.secret_file, "token secret")
        elif args.secret:
            print(ARGV_WARNING.format(what="--secret", fix="--secret-file PATH"), file=sys.stderr)
            secret = args.secret
        else:
            from .settings import _env_secret

            secret = _env_secret("BOTWIRE_TOKEN_SECRET") or ""
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not secret:
        print(
            "botwire-server: no secret; pass --secret or set BOTWIRE_TOKEN_SECRET "
            "(the same one the server uses).",
            file=sys.stderr,
        )
        return 2
    try:
        expires = parse_duration(args.expires)
    except ValueError as exc:
        print(f"botwire-server: --expires: {exc}", file=sys.stderr)
        return 2
    perm = "read" if args.read_only else "admin" if args.admin else "write"
    print(mint_token(secret, args.ns, perm=perm, expires_in=expires))
    return 0


def _serve(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    warnings: list[str] = []
    try:
        database, token_secret = args.database, args.token_secret
        if args.database_url_file:
            if database:
                raise ConfigError(
                    "botwire-server: give --database or --database-url-file, not both."
                )
            database = read_secret_file(args.database_url_file, "database URL")
        elif database and database_password(database):
            warnings.append(
                ARGV_WARNING.format(
                    what="a database password in --database", fix="--database-url-file PATH"
                )
            )
        listen_url = args.pg_listen_url
        if args.pg_listen_url_file:
            if listen_url:
                raise ConfigError(
                    "botwire-server: give --pg-listen-url or --pg-listen-url-file, not both."
                )
            listen_url = read_secret_file(args.pg_listen_url_file, "PostgreSQL listen URL")
        elif listen_url and database_password(listen_url):
            warnings.append(
                ARGV_WARNING.format(
                    what="a database password in --pg-listen-url", fix="--pg-listen-url-file PATH"
                )
            )
        if args.token_secret_file:
            if token_secret:
                raise ConfigError(
                    "botwire-server: give --token-secret or --token-secret-file, not both."
                )
            token_secret = read_secret_file(args.token_secret_file, "token secret")
        elif token_secret:
            warnings.append(
                ARGV_WARNING.format(what="--token-secret", fix="--token-secret-file PATH")
            )
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            database=database,
            token_secret=token_secret,
            allow_anonymous=args.allow_anonymous,
            writes_per_day=args.writes_per_day,
            max_namespace_bytes=args.max_namespace_bytes,
            max_value_bytes=args.max_value_bytes,
            max_keys=args.max_keys,
            free_tier=args.free_tier,
            log_level=args.log_level,
            synchronous=args.synchronous,
            store_calls=args.store_calls,
            testing_clock=args.testing_clock,
            access_log=False if args.no_access_log else None,
            cors_origins=tuple(args.cors_origin) if args.cors_origin else None,
            allowed_hosts=tuple(args.allowed_host) if args.allowed_host else None,
            max_response_bytes=args.max_response_bytes,
            max_json_elements=args.max_json_elements,
            max_append_items=args.max_append_items,
            max_list_length=args.max_list_length,
            max_inflight_bytes=args.max_inflight_bytes,
            default_ttl=args.default_ttl,
            default_max_list_len=args.default_max_list_len,
            max_idle=args.max_idle,
            watch_hold=args.watch_hold,
            max_watchers=args.max_watchers,
            max_watchers_per_namespace=args.max_watchers_per_namespace,
            tombstone_retention=args.tombstone_retention,
            pg_pooler=args.pg_pooler,
            pg_listen_url=listen_url,
        )
        settings.check_bind()
        log_format = startup.log_format(args.log_format, sys.stderr)
    except ConfigError as exc:
        from ._logging import mask

        print(mask(str(exc)), file=sys.stderr)
        return 2

    from ._logging import mask, register_secrets

    register_secrets(settings.secrets())
    for warning in warnings:
        print(warning, file=sys.stderr)
    # Bind first: a taken port is reported before anything opens or says "ready".
    try:
        sock = startup.listen(settings.host, settings.port)
    except ConfigError as exc:
        print(mask(str(exc)), file=sys.stderr)
        return 1
    with sock:
        if settings.port == 0:  # the port the system chose, for the ready line and the links
            settings = settings.with_changes(port=sock.getsockname()[1])
        return _run(settings, sock, log_format)


def _run(settings: Settings, sock: socket.socket, log_format: str) -> int:
    """Open the store, then serve on the already listening ``sock``."""
    from ._logging import configure_logging, mask

    configure_logging(settings.log_level, log_format)
    if settings.token_secret is not None and len(settings.token_secret.encode()) < 32:
        log.warning(
            "the token secret is shorter than 32 bytes; use a long random secret "
            "(e.g. 'openssl rand -hex 32')"
        )
    if settings.token_secret is not None and settings.free_tier:
        log.warning("--free-tier with a token secret: tokens are still required")

    from .storage import TestingClock, open_store

    clock = TestingClock() if settings.testing_clock else None
    try:
        store = open_store(settings, clock) if clock else open_store(settings)
    except ImportError as exc:
        print(mask(f"botwire-server: cannot load the PostgreSQL store: {exc}"), file=sys.stderr)
        return 1
    except ConfigError as exc:  # e.g. --pg-pooler none in front of a transaction pooler
        print(mask(str(exc)), file=sys.stderr)
        return 2
    except Exception as exc:
        print(mask(_database_error(settings, exc)), file=sys.stderr)
        return 1

    import uvicorn

    from ._protocol import http_protocol_options
    from .app import create_app

    app = create_app(settings, store=store, clock=clock)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # on a terminal, the ready line replaces uvicorn's start-up chatter
        log_level="warning"
        if log_format == "human" and settings.log_level in ("info", "debug")
        else settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        # Warm serverless invocations come seconds to minutes apart; uvicorn's 5 s default would
        # close their keep-alive connection every time (75 s, like common load balancers).
        timeout_keep_alive=75,
        **http_protocol_options(),  # bounded request heads (size and time): see _protocol.py
    )
    server = uvicorn.Server(config)
    _freeze_startup_objects()
    server.run(sockets=[sock])
    return 0 if server.started else 1


#: objects allocated (less those freed) between two young collections; Python's default is 700
YOUNG_GC_THRESHOLD = 20_000


def _freeze_startup_objects() -> None:
    """Move what start-up loaded (modules, the app, its routes and schemas, the store) out of
    the garbage collector's sight (``gc.freeze``): it lives as long as the process, yet every
    full collection scanned all of it again. Measured under P3's write load (SQLite): a full
    collection took 50-77 ms every second or so, stalling every request in flight (SET p99 62
    ms); frozen, ~1 ms (p99 9 ms). Garbage made before is collected first.

    Young collections then run every :data:`YOUNG_GC_THRESHOLD` allocations, not every 700: at
    700 one ran every few requests and found the 32 requests in flight alive, scanned them and
    moved them on to older generations, to be scanned again there. Server CPU per request under
    P3's load (PostgreSQL, ``benchmarks/server_cpu.py``, 4 rounds alternated): SET 167 -> 151
    us, APPEND 188 -> 170 us, GET 63 -> 59 us; the no-op did not move (docs/benchmarks-log.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


def _database_error(settings: Settings, exc: BaseException) -> str:
    """Why the database cannot be opened, which one, and what to do."""
    shown = startup.database_shown(settings)
    if settings.is_postgres:
        fix = (
            "check that PostgreSQL runs and accepts this user and database "
            "(--database or BOTWIRE_DATABASE_URL)"
        )
    else:
        folder = os.path.dirname(os.path.abspath(settings.sqlite_path))
        fix = (
            f"the server must read and write this file and create files beside it "
            f"(-wal, -shm) in {folder}: check that folder exists, its permissions, its free "
            "space and that the file is a SQLite database, or choose another with --database "
            "(env BOTWIRE_DATABASE_URL)"
        )
    return f"botwire-server: cannot open the database ({shown}): {exc}; {fix}."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``botwire-server`` and ``python -m botwire_server``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "token":
        return _token(argv[1:])
    if argv and argv[0] == "backup":
        from .backup import main as backup_main

        return backup_main(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return _serve(argv)
