"""What a person sees when the server starts, and ``GET /``.

* :func:`listen` binds the port before anything says "ready", so a taken port is one clear
  error and a non-zero exit, never "ready" followed by ``[Errno 98]``.
* :func:`ready_line` is the line a person reads: URL, database, auth and what to export.
  :class:`HumanFormatter` prints it (and short access lines) when stderr is a terminal; JSON
  logs stay the default elsewhere (``--log-format json|human``, env ``BOTWIRE_LOG_FORMAT``).
* :func:`install_root` answers ``GET /`` with links: JSON for API clients, a tiny HTML page for
  browsers (its links relative, so they work behind a reverse proxy's path prefix). The links
  are the plain list ``app.state.links``; a later route (a console) appends
  ``{"rel", "href", "title"}`` to it.
"""

from __future__ import annotations

import errno
import html
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from . import __version__
from .settings import ConfigError, Settings, is_loopback, mask_url

if TYPE_CHECKING:  # the CLI imports this module before deciding to serve: no FastAPI yet
    from fastapi import FastAPI

__all__ = [
    "HumanFormatter",
    "client_url",
    "database_shown",
    "install_root",
    "listen",
    "ready_line",
    "server_url",
]

_ANY = ("0.0.0.0", "::", "")


def _hostport(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_url(host: str, port: int) -> str:
    """The URL the server listens on, as bound (``http://0.0.0.0:8765`` for every address)."""
    return f"http://{_hostport(host, port)}"


def client_url(host: str, port: int) -> str:
    """What a client on this machine should use: a wildcard bind is reached via loopback."""
    if host.strip("[]") in _ANY:
        host = "::1" if ":" in host else "127.0.0.1"
    return server_url(host, port)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), or a :class:`ConfigError`
    saying what holds the port and what to do."""
    bare = host.strip("[]")
    try:
        families = {info[0] for info in socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)}
        # "localhost" may resolve to ::1 first; 127.0.0.1 is what clients and docs use
        family = socket.AF_INET if socket.AF_INET in families else families.pop()
    except socket.gaierror as exc:
        raise ConfigError(
            f"botwire-server: cannot listen on {host!r}: {exc.strerror}. Use an IP address of "
            "this machine or a name it resolves, e.g. --host 127.0.0.1 (env BOTWIRE_HOST)."
        ) from None
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it an answer written in two sends waits for the client's delayed ACK
    # (~40 ms per keep-alive request; uvloop sets it on any socket, plain asyncio does not)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is ok
        if family == socket.AF_INET6 and bare in _ANY:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((bare, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        where = server_url(host, port)
        if exc.errno == errno.EADDRINUSE:
            fix = (
                f"another process (another botwire-server?) listens there. Stop it, or choose "
                f"another port: --port {port + 1 if port else 8766} (env BOTWIRE_PORT)"
            )
        elif exc.errno == errno.EACCES:
            fix = "ports below 1024 need privileges; choose --port 8765 (env BOTWIRE_PORT)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            fix = "this machine has no such address; use --host 127.0.0.1 or 0.0.0.0"
        else:
            fix = "check --host and --port (env BOTWIRE_HOST, BOTWIRE_PORT)"
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"botwire-server: cannot listen on {where}: {reason}; {fix}.") from None
    return sock


def database_shown(settings: Settings) -> str:
    """The database as a person should read it: SQLite's resolved absolute path, or the
    PostgreSQL URL with its password masked."""
    if settings.is_postgres:
        return "PostgreSQL " + mask_url(settings.database)
    path = settings.sqlite_path
    if path == ":memory:":
        return "SQLite in memory (lost at exit)"
    return "SQLite " + os.path.abspath(path)


def auth_shown(settings: Settings) -> str:
    if not settings.anonymous:
        return "tokens required (mint one: botwire-server token create --ns 'PATTERN')"
    if settings.free_tier:
        return "anonymous free tier (no token)"
    if is_loopback(settings.host):
        return "anonymous (no token; this machine only)"
    return "anonymous (no token; --allow-anonymous: anyone who reaches it)"


def ready_line(settings: Settings) -> str:
    """``botwire-server 0.3.0 ready on http://...: SQLite /abs/botwire.db, auth ...`` and the
    ``export`` to copy, on a second line."""
    export = f"export BOTWIRE_URL={client_url(settings.host, settings.port)}"
    if not settings.anonymous:
        export += " BOTWIRE_TOKEN=<a token>"
    return (
        f"botwire-server {__version__} ready on {server_url(settings.host, settings.port)} · "
        f"database: {database_shown(settings)} · auth: {auth_shown(settings)}\n"
        f"  next, in your shell: {export}\n"
        f"  console: {client_url(settings.host, settings.port)}/console/"
    )


class HumanFormatter(logging.Formatter):
    """Plain lines for a terminal: ``level: message``; access lines as ``GET /path 200 1.2 ms``."""

    def format(self, record: logging.LogRecord) -> str:
        from ._logging import mask

        if record.name == "botwire_server.access":
            try:
                a = json.loads(record.getMessage())
                return f"  {a['method']} {a['path']} {a['status']} {a['ms']:.1f} ms"
            except (ValueError, KeyError, TypeError):
                return mask(record.getMessage())
        banner = getattr(record, "banner", None)
        text = banner if isinstance(banner, str) else record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return mask(text)


def log_format(requested: str | None, stream: Any) -> str:
    """``human`` or ``json``: the flag, else ``BOTWIRE_LOG_FORMAT``, else human on a terminal."""
    choice = (requested or os.environ.get("BOTWIRE_LOG_FORMAT") or "").strip().lower()
    if choice in ("human", "json"):
        return choice
    if choice:
        raise ConfigError(
            f"botwire-server: log format {choice!r} (--log-format or BOTWIRE_LOG_FORMAT) is "
            "'human' or 'json'."
        )
    try:
        return "human" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


# -- GET / -------------------------------------------------------------------------------------

DEFAULT_LINKS = [
    {"rel": "console", "href": "/console/", "title": "Web console: what agents remember"},
    {"rel": "docs", "href": "/docs", "title": "Interactive API documentation (Swagger UI)"},
    {"rel": "openapi", "href": "/openapi.json", "title": "OpenAPI schema"},
    {"rel": "health", "href": "/healthz", "title": "Liveness"},
    {"rel": "ready", "href": "/readyz", "title": "Readiness (the store answers)"},
    {"rel": "metrics", "href": "/metrics", "title": "Prometheus metrics"},
]


def _relative(href: str) -> str:
    """``/console/`` as ``console/``: this page is the server's root, and a browser resolves a
    relative link against the address it used, so a reverse proxy's path prefix (``/botwire/``)
    is kept; an absolute one would leave it (404)."""
    return href[1:] if href.startswith("/") and not href.startswith("//") else href


def install_root(app: FastAPI) -> None:
    """``GET /``: the links of ``app.state.links`` (JSON, or HTML when a browser asks)."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response

    app.state.links = [dict(link) for link in DEFAULT_LINKS]

    async def root(request: Request) -> Response:
        links: list[dict[str, str]] = request.app.state.links
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            items = "".join(
                f'<li><a href="{html.escape(_relative(x["href"]))}">{html.escape(x["href"])}</a> '
                f"{html.escape(x['title'])}</li>"
                for x in links
            )
            page = (
                "<!doctype html><meta charset=utf-8><title>botwire</title>"
                f"<h1>botwire-server {html.escape(__version__)}</h1>"
                "<p>Persistent key-value memory for AI agents. Clients: "
                "<code>export BOTWIRE_URL=</code>this address, then "
                "<code>from botwire import Memory</code>.</p>"
                f"<ul>{items}</ul>"
            )
            return HTMLResponse(page)
        return JSONResponse({"name": "botwire-server", "version": __version__, "links": links})

    root.__annotations__["request"] = Request  # the class itself: FastAPI injects the request
    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
