"""The key routes without the router: the requests that carry an agent's memory.

``GET``/``PUT``/``PATCH``/``DELETE /v1/namespaces/{ns}/keys/{key}`` and ``POST
/v1/namespaces/{ns}/batch`` (what a LangGraph checkpoint or a ``set_many`` sends) are most of a
server's traffic. Through FastAPI each one also passes its exception middleware, its exit-stack
middleware, a scan of every route and the dependency solver, none of which these endpoints use
(they take the ``Request`` and return a ``Response``). :class:`KeyRoutes` sits inside botwire's
own middlewares (metrics, browser guard, admission, drain: they still see every request) and
calls the endpoint the router would have called, taken from the app's own route table, with the
app's own exception handlers. So the route table stays the one definition of what is served and
what OpenAPI describes; any other request, or a key route with another method (405), goes on
to the router.

The hidden ``GET /_noop/fast`` is served the same way: the benchmark's floor for these routes,
beside ``GET /_noop``, the floor of a routed request (docs/benchmarks.md, P3).

:class:`BotWireAPI` (the app :func:`~botwire_server.create_app` builds) also lets these
requests in ahead of the layers FastAPI puts outside botwire's middlewares: its OpenTelemetry
check and instrumentation, Starlette's entry, the exception-telemetry and body-limit layers.
A claimed key route goes through ``ServerErrorMiddleware`` (the logged 500) and botwire's own
middlewares, built from the same ``user_middleware`` list, straight to its endpoint: measured
under P3's APPEND load on PostgreSQL, those layers were ~6% of the server's CPU (py-spy),
most of it FastAPI's per-request check of the OpenTelemetry providers. When OpenTelemetry is
configured (a tracer, meter or logger provider, global or FastAPI's own), every request takes
FastAPI's whole path, so the key routes get their spans and metrics; the check is made at most
once a second (:data:`TELEMETRY_RECHECK`), so a provider set after start-up is used within it.
The body-limit layer checks FastAPI's ``max_body_size``, which botwire never sets (its routes
bound their bodies themselves, ``read_body``).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any, cast

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

try:  # FastAPI >= 0.165: names the request's OpenTelemetry span after its route, as routing does
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - older FastAPI: no native telemetry
    _route_selected = None  # type: ignore[assignment]

__all__ = ["BATCH_ROUTE", "KEY_ROUTE", "NOOP_FAST", "BotWireAPI", "KeyRoutes"]

KEY_ROUTE = "/v1/namespaces/{ns}/keys/{key:anykey}"
BATCH_ROUTE = "/v1/namespaces/{ns}/batch"
#: The routes served here, in the order they are tried (their paths never match each other's).
FAST_ROUTES = (KEY_ROUTE, BATCH_ROUTE)
NOOP_FAST = "/_noop/fast"
_PREFIX = "/v1/namespaces/"
#: the scope key of a route :meth:`KeyRoutes.claim` matched (so it is matched once)
_CLAIMED = "botwire.route"
#: the scope key of FastAPI's per-request telemetry (when OpenTelemetry is configured)
_TELEMETRY = "fastapi.telemetry"
#: seconds between two checks of whether OpenTelemetry is configured (:class:`BotWireAPI`)
TELEMETRY_RECHECK = 1.0


class KeyRoutes:
    """ASGI middleware serving :data:`FAST_ROUTES` straight from the app's route table.

    ``app`` is the next layer (FastAPI's exception middleware, then the router); ``owner`` is
    the FastAPI app whose ``router.routes`` and ``exception_handlers`` are used, read on the
    first request (routes and handlers are all added by then).

    Example::

        app.add_middleware(KeyRoutes, owner=app)  # first, so it is the innermost
    """

    def __init__(self, app: Any, owner: Any) -> None:
        self.app = app
        self.owner = owner
        self._routes: dict[str, list[Route]] | None = None  # method -> its FAST_ROUTES
        self._noop: Route | None = None
        self._handlers: dict[type[BaseException], Any] = {}

    def _load(self) -> dict[str, list[Route]]:
        routes: dict[str, list[Route]] = {}
        found: set[tuple[str, str]] = set()
        for route in self.owner.router.routes:
            if not isinstance(route, Route):
                continue
            if route.path == NOOP_FAST and self._noop is None:
                self._noop = route
            if (
                route.path in FAST_ROUTES
                and route.methods
                and inspect.iscoroutinefunction(route.endpoint)
                and not getattr(route, "dependencies", None)  # nothing for FastAPI to solve
            ):
                for method in route.methods:
                    if (method, route.path) not in found:  # the router's first match wins
                        found.add((method, route.path))
                        routes.setdefault(method, []).append(route)
        # 500 / Exception stay with ServerErrorMiddleware, outside, as for routed requests
        self._handlers = {
            cls: handler
            for cls, handler in self.owner.exception_handlers.items()
            if isinstance(cls, type) and cls is not Exception
        }
        self._routes = routes
        return routes

    def claim(self, scope: Scope) -> tuple[Route, Scope] | None:
        """The fast route ``scope`` (an HTTP request) matches and its child scope (the path
        parameters, put in the scope when it is served); ``None``: the router's."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        routes = self._routes if self._routes is not None else self._load()
        candidates: Sequence[Route] = ()
        if path.startswith(_PREFIX):
            candidates = routes.get(scope["method"], ())
        elif path == NOOP_FAST and self._noop is not None:
            candidates = (self._noop,)
        for route in candidates:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            claimed = scope.pop(_CLAIMED, None) or self.claim(scope)
            if claimed is not None:
                route, child = claimed
                scope.update(child)
                if _TELEMETRY in scope and _route_selected is not None:
                    _route_selected(scope=scope, path=getattr(route, "path_format", None))
                await self._serve(route, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, route: Route, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive, send)
        try:
            # the endpoint only builds the response: nothing is sent before it returns
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        for cls in type(exc).__mro__:
            handler = self._handlers.get(cls)
            if handler is not None:
                return handler
        return None


class BotWireAPI(FastAPI):
    """FastAPI, with the requests :class:`KeyRoutes` serves let in ahead of FastAPI's own
    outer layers while OpenTelemetry is not configured (see module).

    Example::

        app = BotWireAPI(title="botwire")
        app.add_middleware(KeyRoutes, owner=app)  # what makes a route "fast"
    """

    _bw_lean: Any = None  # ServerErrorMiddleware -> botwire's middlewares -> KeyRoutes, or False
    _bw_claims: KeyRoutes | None = None
    _bw_otel_on = True
    _bw_otel_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            lean = self._bw_lean if self._bw_lean is not None else self._bw_build_lean()
            if lean and not self._bw_otel():
                if self.root_path:  # as FastAPI's own entry does
                    scope["root_path"] = self.root_path
                claimed = self._bw_claims.claim(scope)  # type: ignore[union-attr]
                if claimed is not None:
                    scope["app"] = self
                    scope[_CLAIMED] = claimed
                    await lean(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    def _bw_otel(self) -> bool:
        """Whether FastAPI's OpenTelemetry instrumentation is on, checked at most once per
        :data:`TELEMETRY_RECHECK` (FastAPI checks on every request)."""
        now = time.monotonic()
        if now >= self._bw_otel_until:
            native = getattr(self, "_native_telemetry", None)  # FastAPI >= 0.165
            self._bw_otel_on = bool(native is not None and native.enabled())
            self._bw_otel_until = now + TELEMETRY_RECHECK
        return self._bw_otel_on

    def _bw_build_lean(self) -> Any:
        """The lean stack, from the middlewares added by now (none can be added once the app
        serves): ``False`` when no :class:`KeyRoutes` is among them."""
        if self.middleware_stack is None:  # built now, so no middleware is added after this
            self.middleware_stack = self.build_middleware_stack()
        if not any(cast(Any, m.cls) is KeyRoutes for m in self.user_middleware):
            self._bw_lean = False
            return False
        app: Any = _unclaimed
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
            if isinstance(app, KeyRoutes):
                self._bw_claims = app
        # the 500 handler FastAPI chose for its own stack's ServerErrorMiddleware (outermost)
        handler = getattr(self.middleware_stack, "handler", None)
        self._bw_lean = ServerErrorMiddleware(app, handler=handler, debug=self.debug)
        return self._bw_lean


async def _unclaimed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What the lean stack's :class:`KeyRoutes` would pass on: nothing, it serves only the
    requests it claimed before they entered."""
    raise RuntimeError(
        f"botwire: {scope['method']} {scope['path']} entered the key routes' stack unclaimed"
    )
