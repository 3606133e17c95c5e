"""``DELETE /v1/namespaces/{ns}/keys/{key}`` with an ``Idempotency-Key``: a repeat is answered
as the first request was (``deleted: true``), not with what it finds (the key gone, ``false``).
The client sends the key on every delete, so its retry after a lost answer reports the truth.
Before the fix the route ignored the header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from support.postgres import postgres_url
from support.server import running_server

from botwire._wire import key_path

pg_clear_url = postgres_url(scope="module", prefix="botwire_clear")


def test_a_repeated_keyed_delete_answers_as_the_first_did(http: httpx.Client, ns: str) -> None:
    url = key_path(ns, "k")
    assert http.put(url, json={"value": 1}).status_code == 200
    first = http.delete(url, headers={"Idempotency-Key": "del-1"})
    again = http.delete(url, headers={"Idempotency-Key": "del-1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"deleted": True}
    assert http.get(url).status_code == 404
    assert http.delete(url, headers={"Idempotency-Key": "del-2"}).json() == {"deleted": False}
    assert http.delete(url).json() == {"deleted": False}  # without a key: as before


def test_a_delete_key_reused_for_another_key_is_refused(http: httpx.Client, ns: str) -> None:
    assert http.put(key_path(ns, "a"), json={"value": 1}).status_code == 200
    assert http.delete(key_path(ns, "a"), headers={"Idempotency-Key": "del-3"}).status_code == 200
    other = http.delete(key_path(ns, "b"), headers={"Idempotency-Key": "del-3"})
    assert other.status_code == 400 and "different request" in other.text


def test_openapi_names_the_header_on_the_delete_route(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    delete = doc["paths"]["/v1/namespaces/{ns}/keys/{key}"]["delete"]
    assert "Idempotency-Key" in [p["name"] for p in delete.get("parameters", [])]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_repeated_keyed_clear_answers_the_count_the_first_cleared(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``DELETE /v1/namespaces/{ns}`` keeps its own answer under its key (it drops every other
    record of the namespace): a repeat answers the first count, not the 0 it would find;
    the key reused for a batch is refused; writes after it work as ever."""
    database: Any = tmp_path / "c.db"
    if backend == "postgres":
        database = request.getfixturevalue("pg_clear_url")
    with running_server(database=database) as server, httpx.Client(base_url=server.url) as http:
        ns = f"clear-{backend}"
        batch = {"ops": [{"op": "set", "key": k, "value": 1} for k in ("a", "b", "c")]}
        assert http.post(f"/v1/namespaces/{ns}/batch", json=batch).status_code == 200
        first = http.delete(f"/v1/namespaces/{ns}", headers={"Idempotency-Key": "clr-1"})
        again = http.delete(f"/v1/namespaces/{ns}", headers={"Idempotency-Key": "clr-1"})
        assert first.json() == again.json() == {"deleted": 3}
        other = http.post(
            f"/v1/namespaces/{ns}/batch", json=batch, headers={"Idempotency-Key": "clr-1"}
        )
        assert other.status_code == 400 and "different request" in other.text
        assert http.post(f"/v1/namespaces/{ns}/batch", json=batch).status_code == 200
        new = http.delete(f"/v1/namespaces/{ns}", headers={"Idempotency-Key": "clr-2"})
        assert new.json() == {"deleted": 3}
        usage = http.get(f"/v1/namespaces/{ns}").json()
        assert usage["keys"] == 0 and 0 < usage["bytes"] < 40  # the clear's one small record
