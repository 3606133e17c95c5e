"""Operations: health, readiness, metrics, OpenAPI, startup rules, logs and shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server.srv_helpers import SECRET, key_url
from support.server import ServerProcess, free_port, running_server, start_server

from botwire_server.settings import ConfigError, Settings, is_loopback


def test_healthz_readyz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}


def test_metrics_by_route_template_and_status(http: httpx.Client, ns: str) -> None:
    http.put(key_url(ns, "k"), json={"value": 1})
    http.get(key_url(ns, "missing"))
    text = http.get("/metrics").text
    assert "botwire_requests_total{" in text
    assert 'route="/v1/namespaces/{ns}/keys/{key:anykey}",status="404"' in text
    assert 'method="PUT",route="/v1/namespaces/{ns}/keys/{key:anykey}",status="200"' in text
    assert "botwire_request_duration_seconds_bucket{" in text
    assert "botwire_store_errors_total" in text or "botwire_store_errors" in text
    assert ns not in text  # namespaces never become labels


def test_openapi_describes_every_route(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {
        "/v1/namespaces/{ns}/keys/{key}",
        "/v1/namespaces/{ns}/keys",
        "/v1/namespaces/{ns}/batch",
        "/v1/namespaces/{ns}",
        "/v1/namespaces/{ns}/policy",  # issue 18: retention
        "/memory/{ns}/{key}",
        "/memory/{ns}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/namespaces",  # added by issue 20 (the console's namespace list)
        "/v1/namespaces/{ns}/changes",  # added by issue 18 (watch)
    }
    key = paths["/v1/namespaces/{ns}/keys/{key}"]
    assert set(key) == {"get", "put", "patch", "delete"}
    assert {"200", "304", "404", "400"} <= set(key["get"]["responses"])
    assert {"200", "412", "413", "429"} <= set(key["put"]["responses"])
    for item in paths.values():
        for op in item.values():
            assert "422" not in op["responses"]
    assert "requestBody" in key["put"]
    assert http.get("/docs").status_code == 200


def test_hidden_routes(http: httpx.Client) -> None:
    assert http.get("/_noop").json() == {"ok": True}
    spec = http.get("/openapi.json").text
    assert "_noop" not in spec
    assert "_testing" not in spec


def test_testing_clock_is_off_by_default(tmp_path: Path) -> None:
    with running_server(database=tmp_path / "b.db") as s, httpx.Client(base_url=s.url) as http:
        r = http.post("/_testing/clock", json={"advance": 10})
        assert r.status_code in (404, 405)


def test_testing_clock_refuses_going_back(http: httpx.Client) -> None:
    assert http.post("/_testing/clock", json={"advance": -1}).status_code == 400
    assert http.post("/_testing/clock", json={"advance": "x"}).status_code == 400


def _log_lines(server: ServerProcess) -> list[dict]:
    text = server.log()
    complete = text[: text.rfind("\n") + 1]  # the last line may still be being written
    return [json.loads(line) for line in complete.split("\n") if line.startswith("{")]


def test_access_log_is_json_lines(http: httpx.Client, server: ServerProcess, ns: str) -> None:
    http.get(key_url(ns, "logged"), params={"secret": "should-not-appear"})
    mine: list[dict] = []
    for _ in range(100):
        mine = [e for e in _log_lines(server) if ns in e.get("path", "")]
        if mine:
            break
        time.sleep(0.05)
    assert mine
    assert mine[-1]["route"] == "/v1/namespaces/{ns}/keys/{key:anykey}"
    assert mine[-1]["status"] == 404
    assert mine[-1]["method"] == "GET"
    assert "ms" in mine[-1]
    assert "should-not-appear" not in server.log()


def test_non_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--database",
            str(tmp_path / "b.db"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")},
    )
    assert r.returncode == 2
    assert "refusing to serve" in r.stderr
    assert "--allow-anonymous" in r.stderr
    assert not (tmp_path / "b.db").exists()


def test_bind_rules() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")
    Settings(host="127.0.0.1").check_bind()
    Settings(host="0.0.0.0", allow_anonymous=True).check_bind()
    Settings(host="0.0.0.0", token_secret=SECRET).check_bind()
    Settings(host="0.0.0.0", free_tier=True).check_bind()
    with pytest.raises(ConfigError, match="refusing"):
        Settings(host="0.0.0.0").check_bind()
    with pytest.raises(ConfigError):
        Settings(writes_per_day=-1)


def test_defaults_serve_botwire_db_in_cwd(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "botwire_server", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(proc, "127.0.0.1", port, tmp_path / "none.log")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{server.url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        httpx.put(f"{server.url}{key_url('d', 'k')}", json={"value": 1}).raise_for_status()
        assert (tmp_path / "botwire.db").exists()
    finally:
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete
        assert server.stop() in (0, -signal.SIGTERM)


def test_env_configuration(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    with running_server(database=tmp_path / "ignored.db") as _:
        pass
    s = start_server(
        env={"BOTWIRE_WRITES_PER_DAY": "7", "BOTWIRE_MAX_KEYS": "9"}, database=f"sqlite:///{db}"
    )
    try:
        limits = httpx.get(f"{s.url}/v1/namespaces/e").json()["limits"]
        assert limits["writes_per_day"] == 7
        assert limits["max_keys"] == 9
        assert db.exists()
    finally:
        s.stop()


def test_token_secret_from_env(tmp_path: Path) -> None:
    with running_server(database=tmp_path / "b.db", env={"BOTWIRE_TOKEN_SECRET": SECRET}) as s:
        assert httpx.get(f"{s.url}{key_url('a', 'k')}").status_code == 401


def test_graceful_shutdown_closes_the_store(tmp_path: Path) -> None:
    s = start_server(database=tmp_path / "b.db")
    httpx.put(f"{s.url}{key_url('g', 'k')}", json={"value": "kept"}).raise_for_status()
    assert s.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its shutdown
    assert "Application shutdown complete" in s.log()
    assert "store closed" in s.log()
    with running_server(database=tmp_path / "b.db") as again:
        assert httpx.get(f"{again.url}{key_url('g', 'k')}").json()["value"] == "kept"


def test_unopenable_database_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "--port",
            "0",
            "--database",
            str(blocker / "sub" / "b.db"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert "cannot open the database" in r.stderr


def test_openapi_declares_bearer_auth_when_tokens_are_on(auth_server: ServerProcess) -> None:
    spec = httpx.get(f"{auth_server.url}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]
    assert "401" in spec["paths"]["/v1/namespaces/{ns}/keys/{key}"]["get"]["responses"]


def test_synchronous_full_and_thread_mode_serve(tmp_path: Path) -> None:
    with (
        running_server(
            "--synchronous", "FULL", "--store-calls", "thread", database=tmp_path / "b.db"
        ) as s,
        httpx.Client(base_url=s.url) as http,
    ):
        assert http.put(key_url("sync", "k"), json={"value": [1]}).status_code == 200
        assert http.patch(key_url("sync", "k"), json={"append": [2]}).json()["length"] == 2
        assert http.get(key_url("sync", "k")).json()["value"] == [1, 2]


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    for args in (["--writes-per-day", "-1"], ["--synchronous", "OFF"], ["--port", "x"]):
        r = subprocess.run(
            [sys.executable, "-m", "botwire_server", *args, "--database", str(tmp_path / "b.db")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 2, args
