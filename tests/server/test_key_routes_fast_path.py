"""Issue 22: the key routes skip FastAPI's router (``api/_hot.py``) and answer exactly as the
router would have.

Two real servers (uvicorn, loopback) over their own SQLite files: the app as shipped, and the
same app with :class:`KeyRoutes` taken out of its middleware list, so every request goes through
FastAPI's router and dependency solver. The same requests — successes, every refusal a key route
can give, methods the fast path does not take, proxied prefixes — get the same status, body and
headers from both, and the metrics count them under the same route.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from support.server import free_port, serving_app

from botwire_server import Settings, create_app
from botwire_server.api._hot import BATCH_ROUTE, KEY_ROUTE, KeyRoutes

SECRET = "fast-path-secret-0123456789abcdef0123456789"
# not content-length: it follows the timestamps, which differ between the two servers
HEADERS = ("etag", "content-type", "www-authenticate", "retry-after", "allow")
_TIMES = re.compile(r'"(created_at|updated_at|expires_at|now)":\s*[0-9.e+-]+')


def _find(layer: Any, cls: type) -> Any:
    while layer is not None and not isinstance(layer, cls):
        layer = getattr(layer, "app", None)
    return layer


@contextmanager
def _server(tmp_path: Path, name: str, *, fast: bool) -> Iterator[tuple[str, Any]]:
    port = free_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        database=str(tmp_path / f"{name}.db"),
        token_secret=SECRET,
        max_keys=3,
        max_value_bytes=2000,
        access_log=False,
    )
    app = create_app(settings)
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not KeyRoutes]
    with serving_app(app, port) as url:
        yield url, app


def _token(ns: list[str], perm: str = "write") -> str:
    return jwt.encode({"ns": ns, "perm": perm, "exp": int(time.time() + 600)}, SECRET, "HS256")


def _auth() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Write, read and write+JSON headers, minted when a test runs (tokens made at import
    expire before a long suite reaches this file)."""
    write = {"Authorization": f"Bearer {_token(['fp', 'fp2'])}"}
    read = {"Authorization": f"Bearer {_token(['fp'], 'read')}"}
    return write, read, {**write, "Content-Type": "application/json"}


def _requests() -> list[tuple[str, str, dict[str, str], bytes | None]]:
    k = "/v1/namespaces/fp/keys"
    b = "/v1/namespaces/fp/batch"
    WRITE, READ, JSON = _auth()
    big = json.dumps({"value": "x" * 5000}).encode()
    return [
        ("PUT", f"{k}/a", JSON, b'{"value": {"n": 1}}'),
        ("GET", f"{k}/a", WRITE, None),
        ("HEAD", f"{k}/a", WRITE, None),
        ("GET", f"{k}/a", {**WRITE, "If-None-Match": '"1"'}, None),
        ("PUT", f"{k}/a", {**JSON, "If-Match": '"99"'}, b'{"value": 2}'),
        ("PUT", f"{k}/a", {**JSON, "If-None-Match": "*"}, b'{"value": 2}'),
        ("PUT", f"{k}/a", {**JSON, "If-None-Match": '"1"'}, b'{"value": 2}'),
        ("PUT", f"{k}/a", JSON, b'{"nope": 2}'),
        ("PUT", f"{k}/a", JSON, b'{"value": '),
        ("PUT", f"{k}/a", {**WRITE, "Content-Type": "text/plain"}, b'{"value": 2}'),
        ("PUT", f"{k}/a", JSON, big),
        ("PUT", f"{k}/a%2Fb%2E%2E", JSON, b'{"value": "slash"}'),
        ("GET", f"{k}/a%2Fb%2E%2E", WRITE, None),
        ("GET", f"{k}/a%2Fb%2E%2E", {**WRITE, "X-BotWire-Key": "b"}, None),
        ("GET", f"{k}/%FF", WRITE, None),
        ("PATCH", f"{k}/log", JSON, b'{"append": [1, 2, 3]}'),
        ("PATCH", f"{k}/log", {**JSON, "Idempotency-Key": "i-1"}, b'{"append": [4]}'),
        ("PATCH", f"{k}/log", {**JSON, "Idempotency-Key": "i-1"}, b'{"append": [4]}'),
        ("GET", f"{k}/log?tail=2", WRITE, None),
        ("GET", f"{k}/log?tail=-1", WRITE, None),
        ("PATCH", f"{k}/log", JSON, b'{"incr": 1}'),
        ("PATCH", f"{k}/log", JSON, b'{"append": [1], "incr": 1}'),
        ("PATCH", f"{k}/log", JSON, b'{"pop": true}'),
        ("PUT", f"{k}/over-quota", JSON, b'{"value": 1}'),
        ("GET", f"{k}/missing", WRITE, None),
        ("GET", f"{k}/a", {}, None),
        ("GET", f"{k}/a", {"Authorization": "Bearer nonsense"}, None),
        ("PUT", f"{k}/a", {**READ, "Content-Type": "application/json"}, b'{"value": 3}'),
        ("GET", "/v1/namespaces/fp2/keys/a", READ, None),
        ("GET", "/v1/namespaces/bad%20ns!/keys/a", WRITE, None),
        ("POST", f"{k}/a", JSON, b'{"value": 1}'),
        ("OPTIONS", f"{k}/a", WRITE, None),
        ("GET", f"{k}", WRITE, None),
        ("GET", f"{k}/", WRITE, None),
        ("GET", "/v1/namespaces/fp/keyz/a", WRITE, None),
        ("DELETE", f"{k}/a", {**WRITE, "If-Match": '"99"'}, None),
        ("DELETE", f"{k}/a", WRITE, None),
        ("DELETE", f"{k}/a", WRITE, None),
        # the batch route (a LangGraph checkpoint, set_many), served the same way
        ("POST", b, JSON, _ops({"op": "set", "key": "b1", "value": 1}, {"op": "get", "key": "b1"})),
        ("POST", b, JSON, _ops({"op": "set", "key": "b1", "value": 2, "if_absent": True})),
        (
            "POST",
            b,
            JSON,
            _ops(
                {"op": "incr", "key": "b1"},
                {"op": "append", "key": "b1", "items": [1]},
                atomic=False,
            ),
        ),
        ("POST", b, {**JSON, "Idempotency-Key": "b-1"}, _ops({"op": "incr", "key": "n"})),
        ("POST", b, {**JSON, "Idempotency-Key": "b-1"}, _ops({"op": "incr", "key": "n"})),
        ("POST", b, {**JSON, "Idempotency-Key": "b-1"}, _ops({"op": "incr", "key": "m"})),
        ("POST", b, JSON, _ops({"op": "frobnicate", "key": "b1"})),
        ("POST", b, JSON, b'{"ops": ['),
        ("POST", b, JSON, b'{"ops": "no"}'),
        ("POST", b, {**WRITE, "Content-Type": "text/plain"}, _ops({"op": "get", "key": "b1"})),
        ("POST", b, JSON, _ops({"op": "set", "key": "b2", "value": "x" * 5000})),
        ("POST", b, JSON, _ops(*({"op": "set", "key": f"q{i}", "value": i} for i in range(3)))),
        ("POST", b, {**READ, "Content-Type": "application/json"}, _ops({"op": "get", "key": "b1"})),
        (
            "POST",
            b,
            {**READ, "Content-Type": "application/json"},
            _ops({"op": "incr", "key": "b1"}),
        ),
        ("POST", "/v1/namespaces/bad%20ns!/batch", JSON, _ops({"op": "get", "key": "b1"})),
        ("GET", b, WRITE, None),
        ("POST", b + "/", JSON, _ops({"op": "get", "key": "b1"})),
    ]


def _ops(*ops: dict[str, Any], atomic: bool = True) -> bytes:
    return json.dumps({"ops": list(ops), "atomic": atomic}).encode()


def _answer(r: httpx.Response) -> tuple[int, str, dict[str, str]]:
    body = _TIMES.sub(r'"\1": 0', r.text)
    return r.status_code, body, {h: r.headers[h] for h in HEADERS if h in r.headers}


def _route_counts(metrics: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("botwire_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels] = float(value)
    return out


def test_the_fast_path_answers_exactly_as_the_router(tmp_path: Path) -> None:
    with (
        _server(tmp_path, "fast", fast=True) as (fast, fast_app),
        _server(tmp_path, "routed", fast=False) as (routed, routed_app),
    ):
        WRITE, _, _ = _auth()
        answers: dict[str, list[Any]] = {fast: [], routed: []}
        for base in (fast, routed):
            with httpx.Client(base_url=base, timeout=30) as client:
                for method, path, headers, body in _requests():
                    r = client.request(method, path, headers=headers, content=body)
                    answers[base].append((method, path, *_answer(r)))
                metrics = client.get("/metrics", headers=WRITE).text
                answers[base].append(_route_counts(metrics))
        for got, want in zip(answers[fast], answers[routed], strict=True):
            assert got == want
        statuses = {a[2] for a in answers[fast][:-1]}
        # the list covers successes and the refusals a key route gives
        assert {200, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 429} <= statuses
        counted = answers[fast][-1]
        assert any('route="/v1/namespaces/{ns}/keys/{key:anykey}"' in k for k in counted)
        assert any('route="/v1/namespaces/{ns}/batch",status="200"' in k for k in counted)
        # and the fast path served them, entered ahead of FastAPI's outer layers (BotWireAPI):
        # it found the five routes in the route table
        hot = _find(fast_app._bw_lean, KeyRoutes)
        assert hot is not None and hot._routes is not None
        assert {m: [r.path for r in rs] for m, rs in hot._routes.items()} == {
            "GET": [KEY_ROUTE],
            "PUT": [KEY_ROUTE],
            "PATCH": [KEY_ROUTE],
            "DELETE": [KEY_ROUTE],
            "POST": [BATCH_ROUTE],
        }
        assert _find(routed_app.middleware_stack, KeyRoutes) is None
        assert routed_app._bw_lean is False


def test_an_unexpected_error_on_the_fast_path_is_a_logged_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception no handler claims leaves through ServerErrorMiddleware as the usual
    ``internal`` error, with the route in the log line, and the server goes on serving."""
    WRITE, _, JSON = _auth()
    with _server(tmp_path, "boom", fast=True) as (base, app):
        with httpx.Client(base_url=base, timeout=30) as client:
            put = client.put("/v1/namespaces/fp/keys/a", headers=JSON, json={"value": 1})
            assert put.is_success, put.text
            ctx = app.state.botwire
            runner, ctx.runner = ctx.runner, None  # the store "vanishes": an AssertionError
            try:
                with caplog.at_level("ERROR", logger="botwire_server"):
                    r = client.get("/v1/namespaces/fp/keys/a", headers=WRITE)
            finally:
                ctx.runner = runner
            assert r.status_code == 500, r.text
            assert r.json()["error"]["code"] == "internal"
            assert any("unexpected error on GET" in m for m in caplog.messages), caplog.messages
        # uvicorn closes a connection whose request raised; a new one is served as before
        assert httpx.get(f"{base}/v1/namespaces/fp/keys/a", headers=WRITE).json()["value"] == 1
