"""When the database goes away the server answers 503 ``unavailable`` (never hangs forever or
crashes), counts store errors in /metrics, and stays alive (``/healthz``)."""

from __future__ import annotations

import time

import httpx
import pytest
from server.srv_helpers import key_url
from support.postgres import running_postgres
from support.server import running_server

pytestmark = pytest.mark.postgres


def test_database_down_is_503_and_counted() -> None:
    with running_postgres() as pg:
        url = pg.new_database("botwire_down")
        with running_server(database=url) as s, httpx.Client(base_url=s.url, timeout=90) as http:
            assert http.put(key_url("down", "k"), json={"value": 1}).status_code == 200
            pg.stop()  # the whole PostgreSQL cluster stops
            t0 = time.monotonic()
            r = http.get(key_url("down", "k"))
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "unavailable"
            assert time.monotonic() - t0 < 60
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200
            metrics = http.get("/metrics").text
            errors = [
                line
                for line in metrics.splitlines()
                if line.startswith("botwire_store_errors_total{")
            ]
            assert errors
            assert sum(float(line.rsplit(" ", 1)[1]) for line in errors) >= 2
