"""Namespace routes: listing, batches, usage and clear."""

from __future__ import annotations

import uuid

import httpx
from server.srv_helpers import key_url


def _batch(
    http: httpx.Client, ns: str, ops: list[dict], atomic: bool = True, **kw: object
) -> httpx.Response:
    return http.post(f"/v1/namespaces/{ns}/batch", json={"ops": ops, "atomic": atomic}, **kw)  # type: ignore[arg-type]


def test_list_pages_in_utf8_byte_order(http: httpx.Client, ns: str) -> None:
    keys = ["b", "a", "é", "Z", "a/b", "🙂", "aa"]
    for k in keys:
        http.put(key_url(ns, k), json={"value": k})
    expected = sorted(keys, key=lambda k: k.encode())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = http.get(f"/v1/namespaces/{ns}/keys", params=params)
        assert page.status_code == 200
        body = page.json()
        assert len(body["keys"]) <= 3
        for info in body["keys"]:
            assert set(info) == {"key", "version", "bytes", "updated_at", "expires_at"}
        seen += [k["key"] for k in body["keys"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


def test_list_prefix(http: httpx.Client, ns: str) -> None:
    for k in ("user:1", "user:2", "users", "other"):
        http.put(key_url(ns, k), json={"value": 1})
    r = http.get(f"/v1/namespaces/{ns}/keys", params={"prefix": "user:"})
    assert [k["key"] for k in r.json()["keys"]] == ["user:1", "user:2"]
    assert r.json()["cursor"] is None


def test_list_empty_namespace_and_bad_limits(http: httpx.Client, ns: str) -> None:
    assert http.get(f"/v1/namespaces/{ns}/keys").json() == {"keys": [], "cursor": None}
    for limit in ("0", "1001", "-5", "x"):
        r = http.get(f"/v1/namespaces/{ns}/keys", params={"limit": limit})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_argument"


def test_batch_mixed_ops(http: httpx.Client, ns: str) -> None:
    r = _batch(
        http,
        ns,
        [
            {"op": "set", "key": "a", "value": {"x": 1}},
            {"op": "append", "key": "l", "items": [1, 2]},
            {"op": "incr", "key": "n", "by": 3},
            {"op": "get", "key": "a"},
            {"op": "get", "key": "missing"},
            {"op": "pop", "key": "l"},
            {"op": "delete", "key": "a"},
        ],
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert set(res[0]) == {"version"}
    assert res[1]["length"] == 2
    assert res[2]["value"] == 3
    assert res[3]["found"] is True
    assert res[3]["value"] == {"x": 1}
    assert res[4] == {"found": False}
    assert res[5]["value"] == 2
    assert res[6] == {"deleted": True}


def test_atomic_batch_failed_check_is_412_and_applies_nothing(http: httpx.Client, ns: str) -> None:
    v = http.put(key_url(ns, "guard"), json={"value": 1}).json()["version"]
    r = _batch(
        http,
        ns,
        [
            {"op": "set", "key": "x", "value": 1},
            {"op": "check", "key": "guard", "version": v + 99},
        ],
    )
    assert r.status_code == 412
    err = r.json()["error"]
    assert err["code"] == "conflict"
    assert err["key"] == "guard"
    assert err["current_version"] == v
    assert http.get(key_url(ns, "x")).status_code == 404
    ok = _batch(
        http,
        ns,
        [
            {"op": "check", "key": "guard", "version": v},
            {"op": "check", "key": "absent", "version": None},
            {"op": "set", "key": "x", "value": 2},
        ],
    )
    assert ok.status_code == 200
    assert ok.json()["results"][0] == {"ok": True}


def test_non_atomic_batch_reports_errors_per_op(http: httpx.Client, ns: str) -> None:
    http.put(key_url(ns, "s"), json={"value": "text"})
    r = _batch(
        http,
        ns,
        [
            {"op": "set", "key": "a", "value": 1},
            {"op": "incr", "key": "s"},
            {"op": "set", "key": "b", "value": 2},
        ],
        atomic=False,
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert "version" in res[0]
    assert res[1]["error"]["code"] == "type_mismatch"
    assert "version" in res[2]
    assert http.get(key_url(ns, "b")).json()["value"] == 2


def test_atomic_type_mismatch_is_409(http: httpx.Client, ns: str) -> None:
    http.put(key_url(ns, "s"), json={"value": "text"})
    r = _batch(http, ns, [{"op": "set", "key": "a", "value": 1}, {"op": "incr", "key": "s"}])
    assert r.status_code == 409
    assert http.get(key_url(ns, "a")).status_code == 404


def test_batch_idempotency_key_replays(http: httpx.Client, ns: str) -> None:
    ikey = str(uuid.uuid4())
    ops = [{"op": "append", "key": "l", "items": ["m"]}, {"op": "incr", "key": "n"}]
    a = _batch(http, ns, ops, headers={"Idempotency-Key": ikey})
    b = _batch(http, ns, ops, headers={"Idempotency-Key": ikey})
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    assert http.get(key_url(ns, "l")).json()["value"] == ["m"]
    assert http.get(key_url(ns, "n")).json()["value"] == 1


def test_malformed_batches_are_400(http: httpx.Client, ns: str) -> None:
    url = f"/v1/namespaces/{ns}/batch"
    for body in (
        {},
        {"ops": "x"},
        {"ops": [], "atomic": "yes"},
        {"ops": [1]},
        {"ops": [{"op": "frob", "key": "k"}]},
        {"ops": [{"op": "set", "key": "k"}]},
        {"ops": [{"op": "get", "key": ""}]},
        {"ops": [{"op": "get"}]},
        {"ops": [{"op": "set", "key": "k", "value": 1, "ttl": "x"}]},
        {"ops": [{"op": "get", "key": "k"}] * 1001},
    ):
        r = http.post(url, json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] in ("invalid_argument", "invalid_key")


def test_empty_batch(http: httpx.Client, ns: str) -> None:
    assert _batch(http, ns, []).json() == {"results": []}


def test_usage_and_clear(http: httpx.Client, ns: str) -> None:
    for i in range(3):
        http.put(key_url(ns, f"k{i}"), json={"value": "abc"})
    u = http.get(f"/v1/namespaces/{ns}")
    assert u.status_code == 200
    body = u.json()
    assert body["namespace"] == ns
    assert body["keys"] == 3
    assert body["bytes"] == 3 * (2 + 5)
    assert body["writes_today"] == 3
    assert body["resets_at"] % 86400 == 0
    assert body["limits"]["max_value_bytes"] == 100000
    cleared = http.delete(f"/v1/namespaces/{ns}")
    assert cleared.json() == {"deleted": 3}
    assert http.get(f"/v1/namespaces/{ns}/keys").json()["keys"] == []
    assert http.delete(f"/v1/namespaces/{ns}").json() == {"deleted": 0}
