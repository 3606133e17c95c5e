"""The original hosted service's /memory routes over the same store (DESIGN §5)."""

from __future__ import annotations

import httpx
from server.srv_helpers import key_url


def test_put_get_delete_shapes(http: httpx.Client, ns: str) -> None:
    r = http.put(f"/memory/{ns}/greeting", json={"value": "héllo"})
    assert r.status_code == 200
    assert r.json() == {"namespace": ns, "key": "greeting", "stored": True, "bytes": 6}
    g = http.get(f"/memory/{ns}/greeting")
    assert g.status_code == 200
    body = g.json()
    assert set(body) == {"namespace", "key", "value", "created_at", "updated_at"}
    assert body["value"] == "héllo"
    assert body["namespace"] == ns
    assert isinstance(body["created_at"], float)
    d = http.delete(f"/memory/{ns}/greeting")
    assert d.json() == {"deleted": True, "namespace": ns, "key": "greeting"}


def test_missing_is_404_with_detail(http: httpx.Client, ns: str) -> None:
    for r in (http.get(f"/memory/{ns}/nope"), http.delete(f"/memory/{ns}/nope")):
        assert r.status_code == 404
        assert r.json()["detail"] == f"Key not found: {ns}/nope"
        assert r.json()["error"]["code"] == "not_found"


def test_shared_with_v1(http: httpx.Client, ns: str) -> None:
    http.put(f"/memory/{ns}/s", json={"value": '{"a": 1}'})
    v1 = http.get(key_url(ns, "s")).json()
    assert v1["value"] == '{"a": 1}'  # a string stays a string: no guessing on read
    http.put(key_url(ns, "obj"), json={"value": {"a": [1, 2]}})
    assert http.get(f"/memory/{ns}/obj").json()["value"] == '{"a":[1,2]}'


def test_upsert_keeps_created_at(http: httpx.Client, ns: str) -> None:
    http.put(f"/memory/{ns}/k", json={"value": "1"})
    first = http.get(f"/memory/{ns}/k").json()
    http.put(f"/memory/{ns}/k", json={"value": "2"})
    second = http.get(f"/memory/{ns}/k").json()
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]
    assert second["value"] == "2"


def test_list_newest_first_with_limit(http: httpx.Client, ns: str) -> None:
    for k in ("b", "a", "c", "d"):
        http.put(f"/memory/{ns}/{k}", json={"value": k * 3})
    http.put(f"/memory/{ns}/a", json={"value": "again"})
    r = http.get(f"/memory/{ns}", params={"limit": 3})
    body = r.json()
    assert body["namespace"] == ns
    assert body["count"] == 3
    assert [k["key"] for k in body["keys"]] == ["a", "d", "c"]
    assert set(body["keys"][0]) == {"key", "bytes", "updated_at"}
    full = http.get(f"/memory/{ns}").json()
    assert full["count"] == 4
    assert http.get("/memory/compat-empty-ns").json() == {
        "namespace": "compat-empty-ns",
        "count": 0,
        "keys": [],
    }


def test_bad_requests(http: httpx.Client, ns: str) -> None:
    for body in ({"value": {"a": 1}}, {"value": 5}, {}, {"value": None}):
        r = http.put(f"/memory/{ns}/k", json=body)
        assert r.status_code == 400, body
        assert "detail" in r.json()
    for limit in ("0", "1001", "x"):
        assert http.get(f"/memory/{ns}", params={"limit": limit}).status_code == 400
    assert http.get("/memory/bad%20ns/k").status_code == 400


def test_keys_the_original_mangled_round_trip(http: httpx.Client, ns: str) -> None:
    for key in ("a#b", "x?y=1", "a/b", "user:42", "a b"):
        quoted = key_url(ns, key).rsplit("/", 1)[1]
        assert http.put(f"/memory/{ns}/{quoted}", json={"value": key}).status_code == 200
        assert http.get(f"/memory/{ns}/{quoted}").json()["value"] == key
        assert http.get(key_url(ns, key)).json()["value"] == key
