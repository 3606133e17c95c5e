"""Server configuration: one immutable :class:`Settings`, built from CLI flags and ``BOTWIRE_*``.

Example::

    from botwire_server import Settings, create_app

    settings = Settings(database="/var/lib/botwire/botwire.db", writes_per_day=1000)
    app = create_app(settings)
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from botwire import Limits, Policy
from botwire._config import is_postgres

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "FREE_TIER",
    "ConfigError",
    "Settings",
    "database_password",
    "is_loopback",
    "mask_url",
    "parse_seconds",
    "read_secret_file",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_DATABASE = "./botwire.db"
MIB = 1024 * 1024

#: The hosted free tier of the original service: 1000 writes/day, 50 MB per namespace.
FREE_TIER = {"writes_per_day": 1000, "max_namespace_bytes": 50 * 1000 * 1000}


class ConfigError(ValueError):
    """A setting that cannot work (the CLI prints the message and exits with status 2)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"botwire-server: {name}={raw!r} is not a whole number.") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"botwire-server: {name}={raw!r} is not a number.") from None


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_seconds(text: str, what: str) -> float:
    """``"3600"``, ``"90m"``, ``"12h"``, ``"30d"``, ``"2w"`` → seconds (``0``: none), for the
    retention flags; anything else (negative, NaN, past 1e10 s) is a :class:`ConfigError`."""
    raw = text.strip().lower()
    unit = _SECONDS.get(raw[-1:])
    try:
        value = float(raw[:-1] if unit else raw) * (unit or 1)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1e10:  # also NaN
        raise ConfigError(
            f"botwire-server: {what}={text!r}; give seconds (3600) or a duration (90m, 12h, "
            "30d, 2w), 0 for none."
        )
    return value


def _env_seconds(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    return parse_seconds(raw, name) if raw else 0.0


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in os.environ.get(name, "").split(",") if p.strip())


def read_secret_file(path: str, what: str) -> str:
    """The secret in file ``path`` (Docker/Kubernetes secrets), without its final newline."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"botwire-server: cannot read the {what} from file {path!r}: "
            f"{getattr(exc, 'strerror', None) or type(exc).__name__}."
        ) from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ConfigError(f"botwire-server: the {what} file {path!r} is empty.")
    return text


def _env_secret(name: str) -> str | None:
    """``NAME``, or the content of the file ``NAME_FILE`` names (not both)."""
    value, path = os.environ.get(name) or None, os.environ.get(name + "_FILE") or None
    if value is not None and path is not None:
        raise ConfigError(f"botwire-server: set {name} or {name}_FILE, not both.")
    return read_secret_file(path, name) if path is not None else value


_URL_PASSWORD = re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KV_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def mask_url(text: str) -> str:
    """``text`` with the password of every PostgreSQL URL or ``password=`` masked."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", text))


def database_password(database: str) -> str | None:
    """The password inside a PostgreSQL URL or conninfo string, if any (to mask it)."""
    scheme, sep, rest = database.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres") and "@" in rest:
        # everything between the user's ':' and the last '@', even if malformed (spaces...)
        password = rest.rpartition("@")[0].partition(":")[2]
        return password or None
    m = _KV_PASSWORD.search(database)
    if m:
        return m.group(2).strip("'")
    return None


@dataclass(frozen=True)
class Settings:
    """Everything the server needs; defaults serve 127.0.0.1:8765 on ``./botwire.db``.

    ``max_value_bytes`` (default 1 MiB), ``max_namespace_bytes``, ``max_keys`` and
    ``writes_per_day`` are the per-namespace limits (0 = unlimited). ``store_calls`` chooses how
    SQLite is called: ``"inline"`` on the event loop (measured faster, the default) or
    ``"thread"`` in the worker-thread pool; PostgreSQL writes always go through the thread
    pool (its single-key GETs run on the event loop).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database: str = DEFAULT_DATABASE
    token_secret: str | None = None
    allow_anonymous: bool = False
    writes_per_day: int = 0
    max_namespace_bytes: int = 0
    max_value_bytes: int = MIB
    max_keys: int = 0
    free_tier: bool = False
    log_level: str = "info"
    synchronous: str = "NORMAL"
    testing_clock: bool = False
    store_calls: str = "inline"
    housekeeping_seconds: float = 60.0
    access_log: bool = True
    #: Web origins allowed to call the API from a browser (CORS); ``*`` allows every origin.
    cors_origins: tuple[str, ...] = ()
    #: ``Host`` names answered; empty: the default of :func:`browsers.default_allowed_hosts`.
    allowed_hosts: tuple[str, ...] = ()
    #: Bytes of JSON one response may carry (batch answers included); 0 = unlimited.
    max_response_bytes: int = 16 * MIB
    #: JSON elements (arrays, objects and their members) one request body may hold.
    max_json_elements: int = 1_000_000
    #: Items one ``append`` may add, and items a list may hold (0 = unlimited).
    max_append_items: int = 10_000
    max_list_length: int = 100_000
    #: Bytes of request bodies being parsed and applied at once (admission control).
    max_inflight_bytes: int = 64 * MIB
    #: The store-wide retention policy (issue 18; 0 = none), overridden per namespace by
    #: ``PUT /v1/namespaces/{ns}/policy``: a TTL for writes without one, the items an append
    #: keeps, the seconds without a write after which housekeeping clears a namespace.
    default_ttl: float = 0.0
    default_max_list_len: int = 0
    max_idle: float = 0.0
    #: Seconds a ``/changes`` long-poll is held at most (below load balancers' 30-60 s idle
    #: limits); the client polls again until its own timeout (issue 18, watch).
    watch_hold: float = 20.0
    #: Long-polls waiting at once, per server and per namespace (beyond: 429, Retry-After 1).
    max_watchers: int = 1000
    max_watchers_per_namespace: int = 100
    #: Seconds deletions are reported to watchers (tombstones kept); older resume points: 410.
    tombstone_retention: float = 3600.0
    #: PostgreSQL behind a connection pooler (docs/server.md, "PgBouncer"): ``"auto"`` probes at
    #: start whether two client connections share a server session (transaction pooling);
    #: ``"transaction"`` says so (prepared statements off, LISTEN needs ``pg_listen_url``);
    #: ``"none"``: a direct connection or session pooling (the probe refuses a transaction one).
    pg_pooler: str = "auto"
    #: A DIRECT PostgreSQL URL (bypassing a transaction pooler) for the watch's ``LISTEN``
    #: connection; default: the database URL.
    pg_listen_url: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "writes_per_day",
            "max_namespace_bytes",
            "max_value_bytes",
            "max_keys",
            "max_response_bytes",
            "max_list_length",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"botwire-server: {name} must be >= 0 (0 = unlimited).")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"botwire-server: port {self.port} is not in 0..65535.")
        if self.store_calls not in ("inline", "thread"):
            raise ConfigError("botwire-server: store_calls is 'inline' or 'thread'.")
        if self.synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError("botwire-server: --synchronous is NORMAL, FULL or EXTRA.")
        if not self.housekeeping_seconds > 0:
            raise ConfigError("botwire-server: the housekeeping interval must be > 0 seconds.")
        if "://" in self.database and not self.database.startswith(
            ("sqlite://", "postgresql://", "postgres://")
        ):
            raise ConfigError(
                f"botwire-server: database {self.database.split('://')[0]}://... is not "
                "supported; use a SQLite path (or sqlite:///file.db) or postgresql://..."
            )
        if not self.is_postgres and "://" not in self.database:
            from botwire._config import _suggest_http

            if _suggest_http(self.database.strip()):
                host = self.database.strip()
                raise ConfigError(
                    f"botwire-server: --database {host!r} looks like a server address, not a "
                    f"SQLite file: for PostgreSQL write postgresql://USER@{host}/DBNAME; for a "
                    f"SQLite file of that name, sqlite:///./{host}."
                )
        if not self.is_postgres:
            _ = self.sqlite_path  # sqlite:///tmp/x.db when only /tmp exists: say so now
        if not 0 < self.watch_hold <= 3600:
            raise ConfigError("botwire-server: --watch-hold must be > 0 and <= 3600 seconds.")
        if not self.tombstone_retention > 0:
            raise ConfigError("botwire-server: --tombstone-retention must be > 0 seconds.")
        for name in (
            "max_json_elements",
            "max_append_items",
            "max_inflight_bytes",
            "max_watchers",
            "max_watchers_per_namespace",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"botwire-server: {name} must be >= 1.")
        for name in ("default_ttl", "max_idle", "default_max_list_len"):
            value = getattr(self, name)
            if not 0 <= value <= (1e9 if name == "default_max_list_len" else 1e10):
                raise ConfigError(
                    f"botwire-server: {name}={value!r} must be from 0 (none) to "
                    f"{'1000000000 items' if name == 'default_max_list_len' else '1e10 seconds'}."
                )
        if self.token_secret is not None and not self.token_secret:
            raise ConfigError("botwire-server: the token secret is empty.")
        if self.pg_pooler not in ("auto", "transaction", "none"):
            raise ConfigError(
                f"botwire-server: --pg-pooler {self.pg_pooler!r}; use auto (probe at start), "
                "transaction (PgBouncer pool_mode=transaction) or none (direct or session mode)."
            )
        if self.pg_listen_url is not None:
            listen = self.pg_listen_url
            if not self.is_postgres:
                raise ConfigError(
                    "botwire-server: --pg-listen-url only applies to a PostgreSQL --database."
                )
            if not is_postgres(listen):
                raise ConfigError(
                    "botwire-server: --pg-listen-url must be a postgresql:// URL of the same "
                    "database reached directly, not through a transaction-mode pooler."
                )

    @property
    def limits(self) -> Limits:
        """The per-namespace limits handed to the store (the free tier fills unset ones)."""
        values: dict[str, int] = {
            "max_value_bytes": self.max_value_bytes,
            "max_namespace_bytes": self.max_namespace_bytes,
            "max_keys": self.max_keys,
            "writes_per_day": self.writes_per_day,
        }
        if self.free_tier:
            for name, value in FREE_TIER.items():
                values[name] = values[name] or value
        return Limits(**values)

    @property
    def policy(self) -> Policy:
        """The store-wide retention policy handed to the store's engine (0 → none)."""
        return Policy(
            self.default_ttl or None, self.default_max_list_len or None, self.max_idle or None
        )

    @property
    def anonymous(self) -> bool:
        """True when requests need no token (no secret configured)."""
        return self.token_secret is None

    @property
    def is_postgres(self) -> bool:
        """``postgresql://`` / ``postgres://`` URLs, and libpq ``key=value`` connection strings
        (``host=db dbname=botwire user=...``), which must never become a SQLite file name."""
        db = self.database
        return is_postgres(db)

    @property
    def sqlite_path(self) -> str:
        """The SQLite file named by ``database``, absolute, by the client's one rule:
        ``sqlite:///rel.db`` and ``rel.db`` relative to the working directory,
        ``sqlite:////abs.db`` and ``/abs.db`` absolute (``:memory:`` and ``file:`` URIs kept)."""
        from botwire._config import sqlite_file

        db = self.database.strip() or DEFAULT_DATABASE
        if db.startswith("file:") or db in ("sqlite://", "sqlite:///"):
            return db if db.startswith("file:") else os.path.abspath(DEFAULT_DATABASE)
        try:
            return sqlite_file(db, "--database")
        except ValueError as exc:  # botwire.InvalidArgument: a suggestion for the user
            raise ConfigError(str(exc).replace("botwire:", "botwire-server:", 1)) from None

    def check_bind(self) -> None:
        """Refuse an anonymous server on a non-loopback address without ``allow_anonymous``."""
        if (
            self.anonymous
            and not (self.allow_anonymous or self.free_tier)
            and not is_loopback(self.host)
        ):
            raise ConfigError(
                f"botwire-server: refusing to serve {self.host!r} without authentication: anyone "
                "who can reach it could read and overwrite every namespace. Set a token secret "
                "(--token-secret or BOTWIRE_TOKEN_SECRET) and mint tokens with "
                "'botwire-server token create', or pass --allow-anonymous if that is intended, "
                "or bind 127.0.0.1."
            )

    def public(self) -> dict[str, Any]:
        """The settings without the secret, for logs."""
        shown = {k: v for k, v in self.__dict__.items() if k != "token_secret"}
        shown["auth"] = "anonymous" if self.anonymous else "jwt"
        if self.is_postgres:
            shown["database"] = "postgresql://..."  # the URL may hold a password
            shown["database_url"] = mask_url(self.database)
            if self.pg_listen_url:
                shown["pg_listen_url"] = mask_url(self.pg_listen_url)
        elif self.sqlite_path != ":memory:":
            shown["database"] = os.path.abspath(self.sqlite_path)  # what the server really opens
        return shown

    def secrets(self) -> list[str]:
        """The secret strings of these settings (masked in every log line and message)."""
        found = [self.token_secret] if self.token_secret else []
        from urllib.parse import unquote

        for url in (self.database, self.pg_listen_url) if self.is_postgres else ():
            password = database_password(url) if url else None
            if password:
                found += [password, unquote(password)]  # as written and percent-decoded
        return found

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from ``BOTWIRE_*`` variables, then ``overrides`` (``None`` values ignored)."""
        values: dict[str, Any] = {
            "host": os.environ.get("BOTWIRE_HOST") or DEFAULT_HOST,
            "port": _env_int("BOTWIRE_PORT", DEFAULT_PORT),
            "database": _env_secret("BOTWIRE_DATABASE_URL") or DEFAULT_DATABASE,
            "token_secret": _env_secret("BOTWIRE_TOKEN_SECRET"),
            "allow_anonymous": _env_bool("BOTWIRE_ALLOW_ANONYMOUS"),
            "writes_per_day": _env_int("BOTWIRE_WRITES_PER_DAY", 0),
            "max_namespace_bytes": _env_int("BOTWIRE_MAX_NAMESPACE_BYTES", 0),
            "max_value_bytes": _env_int("BOTWIRE_MAX_VALUE_BYTES", MIB),
            "max_keys": _env_int("BOTWIRE_MAX_KEYS", 0),
            "free_tier": _env_bool("BOTWIRE_FREE_TIER"),
            "log_level": os.environ.get("BOTWIRE_LOG_LEVEL") or "info",
            "synchronous": os.environ.get("BOTWIRE_SQLITE_SYNCHRONOUS") or "NORMAL",
            "testing_clock": _env_bool("BOTWIRE_TESTING_CLOCK"),
            "store_calls": os.environ.get("BOTWIRE_STORE_CALLS") or "inline",
            "housekeeping_seconds": _env_float("BOTWIRE_HOUSEKEEPING_SECONDS", 60.0),
            "cors_origins": _env_list("BOTWIRE_CORS_ORIGINS"),
            "allowed_hosts": _env_list("BOTWIRE_ALLOWED_HOSTS"),
            "max_response_bytes": _env_int("BOTWIRE_MAX_RESPONSE_BYTES", 16 * MIB),
            "max_json_elements": _env_int("BOTWIRE_MAX_JSON_ELEMENTS", 1_000_000),
            "max_append_items": _env_int("BOTWIRE_MAX_APPEND_ITEMS", 10_000),
            "max_list_length": _env_int("BOTWIRE_MAX_LIST_LENGTH", 100_000),
            "max_inflight_bytes": _env_int("BOTWIRE_MAX_INFLIGHT_BYTES", 64 * MIB),
            "default_ttl": _env_seconds("BOTWIRE_DEFAULT_TTL"),
            "default_max_list_len": _env_int("BOTWIRE_DEFAULT_MAX_LIST_LEN", 0),
            "max_idle": _env_seconds("BOTWIRE_MAX_IDLE"),
            "watch_hold": _env_float("BOTWIRE_WATCH_HOLD", 20.0),
            "max_watchers": _env_int("BOTWIRE_MAX_WATCHERS", 1000),
            "max_watchers_per_namespace": _env_int("BOTWIRE_MAX_WATCHERS_PER_NAMESPACE", 100),
            "tombstone_retention": _env_float("BOTWIRE_TOMBSTONE_RETENTION", 3600.0),
            "pg_pooler": (os.environ.get("BOTWIRE_PG_POOLER") or "auto").strip().lower(),
            "pg_listen_url": _env_secret("BOTWIRE_PG_LISTEN_URL"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
