"""The access log (one JSON line per request), written as ``botwire-server`` writes it: its
lines built without ``json.dumps`` and a turn's lines written together (``_access.py``), or
through ``logging`` when an app embedding the server has handlers of its own."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st
from server.srv_helpers import key_url
from support.server import ServerProcess, free_port, running_server, serving_app

from botwire_server import Settings, create_app
from botwire_server._access import access_line

KEYS = ["plain", 'é"q\\\n', "tab\there", "emoji 🙂", "ctrl \x01\x7f", "\u2028sep"]
_finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    ts=_finite,
    method=st.text(),
    path=st.text(),
    route=st.text(),
    status=st.integers(0, 999),
    ms=_finite,
    client=st.none() | st.text(),
)
def test_a_line_is_what_json_dumps_writes(
    ts: float, method: str, path: str, route: str, status: int, ms: float, client: str | None
) -> None:
    expected = json.dumps(
        {
            "ts": ts,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "ms": ms,
            "client": client,
        },
        ensure_ascii=True,
    )
    assert access_line(ts, method, path, route, status, ms, client) == expected


def _lines(server: ServerProcess) -> list[str]:
    text = server.log()
    return text[: text.rfind("\n") + 1].splitlines()


def test_every_request_one_whole_line_under_concurrency(tmp_path: Path) -> None:
    """8 threads × 40 requests on keep-alive connections, keys that JSON must escape: every
    request has exactly one line, every line is one JSON object, and the last request's line
    is written without waiting for another request."""
    with running_server(database=tmp_path / "bw.db") as server:
        wanted: list[str] = []

        def worker(n: int) -> None:
            with httpx.Client(base_url=server.url) as http:
                for i in range(40):
                    key = f"{KEYS[i % len(KEYS)]}-{n}-{i}"
                    path = key_url("logged", key)
                    wanted.append(httpx.URL(server.url + path).path)
                    assert http.put(path, json={"value": i}).status_code == 200

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 10
        while True:
            entries = [json.loads(line) for line in _lines(server) if line.startswith("{")]
            paths = [e["path"] for e in entries if e.get("route", "").endswith("{key:anykey}")]
            if len(paths) >= len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert sorted(paths) == sorted(wanted)
    assert all(e["status"] == 200 for e in entries if "/logged/" in e.get("path", ""))
    for line in _lines(server):
        json.loads(line)  # nothing merged or cut


def test_a_secret_in_a_path_is_masked(tmp_path: Path) -> None:
    secret = "access-log-secret-0123456789abcdef0123456789"
    with running_server("--token-secret", secret, database=tmp_path / "bw.db") as server:
        httpx.get(server.url + key_url("ns", f"x{secret}y"))
        deadline = time.monotonic() + 10
        while '"route"' not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.log()
    assert '"path": "/v1/namespaces/ns/keys/x***y"' in log, log
    assert secret not in log


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_embedded_app_logs_through_its_own_handlers(tmp_path: Path) -> None:
    """``create_app`` in an application of its own: the access log goes through ``logging``,
    to the handlers the application set, one record per request."""
    logger = logging.getLogger("botwire_server.access")
    records = _Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        port = free_port()
        settings = Settings(host="127.0.0.1", port=port, database=str(tmp_path / "bw.db"))
        with serving_app(create_app(settings), port) as url, httpx.Client(base_url=url) as http:
            for i in range(5):
                assert http.put(key_url("emb", f"k{i}"), json={"value": i}).status_code == 200
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    mine = [json.loads(m) for m in records.messages if "/emb/" in m]
    assert [e["path"] for e in mine] == [f"/v1/namespaces/emb/keys/k{i}" for i in range(5)]


def test_the_human_format_still_logs_each_request(tmp_path: Path) -> None:
    with running_server("--log-format", "human", database=tmp_path / "bw.db") as server:
        httpx.put(server.url + key_url("hum", "k"), json={"value": 1})
        deadline = time.monotonic() + 10
        while "/v1/namespaces/hum/keys/k" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "/v1/namespaces/hum/keys/k" in server.log()
