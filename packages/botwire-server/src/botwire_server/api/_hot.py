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
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Match, Route

__all__ = ["BATCH_ROUTE", "KEY_ROUTE", "NOOP_FAST", "KeyRoutes"]

KEY_ROUTE = "/v1/namespaces/{ns}/keys/{key:anykey}"
BATCH_ROUTE = "/v1/namespaces/{ns}/batch"
#: The routes served here, in the order they are tried (their paths never match each other's).
FAST_ROUTES = (KEY_ROUTE, BATCH_ROUTE)
NOOP_FAST = "/_noop/fast"
_PREFIX = "/v1/namespaces/"


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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
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
                    scope.update(child)
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
