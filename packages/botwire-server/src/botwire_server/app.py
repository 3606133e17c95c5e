"""The FastAPI application: :func:`create_app` wires settings, store, auth, metrics and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from botwire.store import Store

from . import __version__
from .admission import AdmissionMiddleware
from .api import ServerContext, install_error_handlers, install_routes
from .api._hot import BotWireAPI, KeyRoutes
from .api._http import DrainRefusedBody
from .api._namespace_list import install_namespace_list
from .auth import Authorizer
from .browsers import BrowserGuard, default_allowed_hosts
from .console import install_console
from .metrics import Metrics, MetricsMiddleware
from .settings import Settings, is_loopback
from .startup import install_root, ready_line
from .storage import StoreRunner, TestingClock, open_store
from .storage._open import apply_list_limits
from .watch import WatchHub

__all__ = ["create_app"]

log = logging.getLogger("botwire_server")

DESCRIPTION = """Persistent key-value memory for AI agents.

Keys travel percent-encoded in the path (every byte outside the unreserved set; `.` and `..`
as `%2E`). Values are any JSON value. Every error is
`{"error": {"code", "message", "namespace"?, "key"?, ...}}`.
"""


async def _housekeeping(ctx: ServerContext, every: float) -> None:
    """Purge expired entries and forget idempotency records older than 24 h, forever."""
    while True:
        await asyncio.sleep(every)
        try:
            purged = await ctx.store.housekeeping()
            if purged:
                log.info("housekeeping purged %d expired entries", purged)
            hub = ctx.extra.get("watch")
            if hub is not None:  # it may have cleared idle namespaces or trimmed lists:
                hub.wake_all()  # their waiters read again (once a round, not per key)
        except Exception as exc:  # keep the loop alive; the next round retries
            ctx.metrics.store_errors.labels(type(exc).__name__).inc()
            log.warning("housekeeping failed: %s", exc)


def create_app(
    settings: Settings | None = None, *, store: Store | None = None, clock: Any = None
) -> FastAPI:
    """The ASGI application for ``settings`` (default: :class:`Settings` defaults).

    ``store`` may be passed already open (the CLI opens it first to report errors clearly);
    otherwise it is opened at startup. Either way it is closed at shutdown. ``clock`` is the
    store's clock (a :class:`TestingClock` when ``settings.testing_clock``).

    Example::

        import uvicorn
        from botwire_server import Settings, create_app

        uvicorn.run(create_app(Settings(database="/data/botwire.db")), port=8765)
    """
    settings = settings or Settings()
    if clock is None:
        clock = TestingClock() if settings.testing_clock else time.time
    metrics = Metrics()
    ctx = ServerContext(settings, Authorizer(settings.token_secret), metrics, clock)
    gate = ctx.admission
    metrics.inflight_bytes.set_function(lambda: gate.inflight)
    metrics.admission_waits.set_function(lambda: gate.waited)
    metrics.admission_refusals.set_function(lambda: gate.refused)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store if store is not None else open_store(settings, clock)
        apply_list_limits(opened, settings)
        inline = settings.store_calls == "inline" and not settings.is_postgres

        def on_error(exc: BaseException) -> None:
            metrics.store_errors.labels(type(exc).__name__).inc()

        ctx.runner = StoreRunner(opened, inline=inline, on_error=on_error)
        await ctx.runner.open()  # PostgreSQL's async read pool belongs to this event loop
        # SQLite's group commit (_group), or PostgreSQL's per-namespace groups (_pg_group)
        groups = ctx.runner.groups or getattr(ctx.runner.reader, "groups", None)
        if groups is not None:
            metrics.write_groups.set_function(lambda: groups.groups)
            metrics.grouped_writes.set_function(lambda: groups.writes)
        pg_groups = getattr(ctx.runner.reader, "groups", None)
        if pg_groups is not None:  # PostgreSQL: several namespaces' groups in one transaction
            metrics.shared_write_transactions.set_function(lambda: pg_groups.shared)
            metrics.shared_write_namespaces.set_function(lambda: pg_groups.shared_namespaces)
        engine = getattr(opened, "engine", None)
        if engine is not None and hasattr(engine, "tombstone_seconds"):
            engine.tombstone_seconds = settings.tombstone_retention
        hub = WatchHub(
            opened,
            max_watchers=settings.max_watchers,
            per_namespace=settings.max_watchers_per_namespace,
            listen_dsn=settings.pg_listen_url,  # direct, when the database URL is PgBouncer's
        )
        await hub.open()  # PostgreSQL: LISTEN botwire_changes
        metrics.watchers.set_function(lambda: hub.count)
        metrics.watch_wakes.set_function(lambda: hub.wakes)
        ctx.extra["watch"] = hub
        ctx.runner.on_write = hub.written
        task = asyncio.create_task(_housekeeping(ctx, settings.housekeeping_seconds))
        # JSON logs carry the settings; a terminal shows ready_line (startup.HumanFormatter)
        log.info(
            "botwire-server ready: %s", settings.public(), extra={"banner": ready_line(settings)}
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await hub.close()
            await ctx.runner.close()
            log.info("botwire-server stopped; store closed")

    app = BotWireAPI(
        title="botwire",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.botwire = ctx
    install_error_handlers(app)
    install_routes(app, testing_clock=settings.testing_clock)
    install_namespace_list(app)  # GET /v1/namespaces (issue 20)
    install_console(app)  # the web console at /console/ (issue 20)
    install_root(app)  # GET /: links (app.state.links)
    # --allowed-host adds names to the loopback defaults of an anonymous loopback server
    allowed_hosts = (
        *settings.allowed_hosts,
        *default_allowed_hosts(
            settings.host, anonymous=settings.anonymous, loopback=is_loopback(settings.host)
        ),
    )
    # Innermost: the key routes skip FastAPI's router and dependency solver (api/_hot.py)
    app.add_middleware(KeyRoutes, owner=app)
    # Inside the metrics middleware, so refusals are counted and logged like any request.
    app.add_middleware(AdmissionMiddleware, admission=ctx.admission)
    app.add_middleware(
        BrowserGuard, allowed_hosts=allowed_hosts, cors_origins=settings.cors_origins
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=settings.access_log)
    app.add_middleware(DrainRefusedBody)  # a refused upload's 413 must not be lost in a reset

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            if settings.token_secret is not None:
                schema.setdefault("components", {})["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
                schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    # FastAPI's documented way to extend the schema: replace app.openapi with a function
    app.openapi = openapi  # type: ignore[method-assign]
    return app
