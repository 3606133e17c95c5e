"""Prometheus metrics and the structured access log, as one pure-ASGI middleware.

Each app has its own :class:`~prometheus_client.CollectorRegistry`, so several apps can live in
one process. Requests are labelled by route *template* (never by namespace or key) and status.

Example::

    metrics = Metrics()
    app = MetricsMiddleware(app, metrics, access_log=True)
    text, content_type = metrics.render()
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily

from ._access import AccessLog, access_line, access_logger

__all__ = ["Metrics", "MetricsMiddleware", "access_logger"]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's collectors: requests, latency, store errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "botwire_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "botwire_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "botwire_store_errors",
            "Store calls that failed unexpectedly (unreachable database, I/O, bugs).",
            ["error"],
            registry=self.registry,
        )
        #: long-polls of /changes waiting now (watch, issue 18); a callback, read at scrape
        self.watchers = Gauge(
            "botwire_watchers", "Long-polls of /changes waiting now.", registry=self.registry
        )
        #: held long-polls woken to read again (each wake is one read of the store); a counter
        #: read from the watch hub at scrape (``botwire_watch_wakes_total``)
        self.watch_wakes = CallbackCounter(
            "botwire_watch_wakes",
            "Held long-polls of /changes woken to read the store again.",
            registry=self.registry,
        )
        #: group commit (issue 22): transactions run for grouped writes, and the writes in
        #: them; callbacks, read at scrape (writes / groups = writes per COMMIT). SQLite counts
        #: every group; PostgreSQL the transactions that ran several writes
        self.write_groups = Gauge(
            "botwire_write_groups",
            "Write transactions that committed grouped writes (group commit).",
            registry=self.registry,
        )
        self.grouped_writes = Gauge(
            "botwire_grouped_writes",
            "Writes committed by those grouped transactions.",
            registry=self.registry,
        )
        #: PostgreSQL (issue 22): transactions that ran the next groups of several namespaces
        #: together (``_pg_plans.multi_plan``), and the namespaces in them; callbacks
        self.shared_write_transactions = Gauge(
            "botwire_shared_write_transactions",
            "Write transactions that ran the grouped writes of several namespaces (PostgreSQL).",
            registry=self.registry,
        )
        self.shared_write_namespaces = Gauge(
            "botwire_shared_write_namespaces",
            "Namespaces written by those shared transactions.",
            registry=self.registry,
        )
        #: what the server froze at start (``cli._freeze_startup_objects``); a callback
        self.frozen_objects = Gauge(
            "botwire_gc_frozen_objects",
            "Objects moved out of the garbage collector's sight at start-up (gc.freeze).",
            registry=self.registry,
        )
        self.frozen_objects.set_function(gc.get_freeze_count)
        #: the young generation's threshold (``cli._freeze_startup_objects`` raises it)
        self.young_gc_threshold = Gauge(
            "botwire_gc_young_threshold",
            "Allocations between two young garbage collections (gc.get_threshold()[0]).",
            registry=self.registry,
        )
        self.young_gc_threshold.set_function(lambda: gc.get_threshold()[0])
        self.quota_refusals = Counter(
            "botwire_quota_refusals",
            "Writes refused by a quota or size limit.",
            ["quota"],
            registry=self.registry,
        )
        #: admission of request bodies (``admission.Admission``, ``--max-inflight-bytes``);
        #: callbacks, read at scrape
        self.inflight_bytes = Gauge(
            "botwire_inflight_bytes",
            "Request-body bytes admitted and not yet answered.",
            registry=self.registry,
        )
        self.admission_waits = CallbackCounter(
            "botwire_admission_waits",
            "Request bodies that waited for admission (--max-inflight-bytes).",
            registry=self.registry,
        )
        self.admission_refusals = CallbackCounter(
            "botwire_admission_refusals",
            "Request bodies refused 503 after waiting too long for admission.",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CallbackCounter:
    """A counter whose value is read from a callback at scrape time (``prometheus_client``'s
    ``Counter`` is only incremented): for totals another object keeps.

    Example::

        wakes = CallbackCounter("botwire_watch_wakes", "...", registry=registry)
        wakes.set_function(lambda: hub.wakes)  # exposed as botwire_watch_wakes_total
    """

    def __init__(self, name: str, documentation: str, *, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self._read: Callable[[], float] = lambda: 0.0
        registry.register(self)

    def set_function(self, read: Callable[[], float]) -> None:
        self._read = read

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.documentation, value=self._read())]


def _route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request; writes one JSON line per request to the access log.

    The line holds time, method, path (without the query string), route, status, duration and
    client address; it never holds headers, so tokens are never logged. Lines are written by
    :class:`~._access.AccessLog` (a turn's lines in one write).
    """

    def __init__(self, app: Any, metrics: Metrics, *, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # (method, route, status) -> its two series: labels() takes a lock and builds tuples
        # on every call. Bounded: httptools parses only HTTP's own methods, routes are templates.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._log = AccessLog()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            method = scope["method"]
            series = self._series.get((method, route, status))
            if series is None:
                series = (
                    self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.latency.labels(method, route),
                )
                if len(self._series) < 4096:
                    self._series[(method, route, status)] = series
            series[0].inc()
            series[1].observe(elapsed)
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                self._log.write(
                    access_line(
                        round(time.time(), 3),
                        method,
                        scope.get("path", ""),
                        route,
                        status,
                        round(elapsed * 1000, 3),
                        client[0] if client else None,
                    )
                )
