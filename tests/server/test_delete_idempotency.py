"""``DELETE /v1/namespaces/{ns}/keys/{key}`` with an ``Idempotency-Key``: a repeat is answered
as the first request was (``deleted: true``), not with what it finds (the key gone, ``false``).
The client sends the key on every delete, so its retry after a lost answer reports the truth.
Before the fix the route ignored the header."""

from __future__ import annotations

import httpx

from botwire._wire import key_path


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
