"""Issue 22: the key routes enter ahead of FastAPI's outer layers (``BotWireAPI``, api/_hot.py)
only while OpenTelemetry is not configured, so a deployment that configures it still gets
FastAPI's spans for every request, the key routes' too.

A real server process whose interpreter configures a global tracer provider at start-up (a
``sitecustomize`` on ``PYTHONPATH``, as an OpenTelemetry launcher does), writing each finished
span to a file; and the same server without it, whose key routes then take the lean entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from support.server import running_server

_SITECUSTOMIZE = """
import json, os
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class _ToFile(SpanExporter):
    def export(self, spans):
        with open(os.environ["SPANS_OUT"], "a") as f:
            for s in spans:
                f.write(json.dumps({"name": s.name, "attrs": dict(s.attributes or {})}) + "\\n")
        return SpanExportResult.SUCCESS

_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_ToFile()))
trace.set_tracer_provider(_provider)
"""


def _requests(base: str) -> None:
    json_headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=30) as client:
        put = client.put("/v1/namespaces/otel/keys/a", headers=json_headers, json={"value": 1})
        assert put.status_code in (200, 201), put.text
        assert client.get("/v1/namespaces/otel/keys/a").json()["value"] == 1
        patch = client.patch(
            "/v1/namespaces/otel/keys/list", headers=json_headers, json={"append": [1]}
        )
        assert patch.is_success, patch.text
        assert client.get("/healthz").is_success  # a routed request, for comparison


def _spans(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key_route_spans(spans: list[dict[str, object]]) -> list[str]:
    return [str(s["name"]) for s in spans if "/keys/" in str(s["name"])]


def test_with_opentelemetry_configured_the_key_routes_get_fastapis_spans(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    out = tmp_path / "spans.jsonl"
    # CI exports OTEL_SDK_DISABLED=true (for crewai); this deployment turns the SDK on
    env = {"PYTHONPATH": str(site), "SPANS_OUT": str(out), "OTEL_SDK_DISABLED": "false"}
    with running_server("--database", str(tmp_path / "otel.db"), database=False, env=env) as srv:
        _requests(f"http://{srv.host}:{srv.port}")
    spans = _spans(out)
    names = _key_route_spans(spans)
    # FastAPI names a server span "METHOD route", as the router would have: the key routes'
    # spans carry their route template too (KeyRoutes tells FastAPI's telemetry which it is)
    route = "/v1/namespaces/{ns}/keys/{key}"  # its path_format, as the router gives
    for method in ("PUT", "GET", "PATCH"):
        assert f"{method} {route}" in names, (method, [s["name"] for s in spans])
    key_spans = [s for s in spans if str(s["name"]).endswith(route)]
    assert all(s["attrs"].get("http.route") == route for s in key_spans), key_spans  # type: ignore[union-attr]
    assert any("healthz" in str(s["name"]) for s in spans), spans


def test_without_opentelemetry_nothing_is_traced(tmp_path: Path) -> None:
    """The control: the same server and requests, no provider, no spans (the file the
    exporter would write is never created), so the test above sees FastAPI's doing."""
    out = tmp_path / "spans.jsonl"
    env = {"SPANS_OUT": str(out)}
    with running_server("--database", str(tmp_path / "plain.db"), database=False, env=env) as srv:
        _requests(f"http://{srv.host}:{srv.port}")
    assert _spans(out) == []
