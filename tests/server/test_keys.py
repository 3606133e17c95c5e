"""Single-key routes: GET, PUT, PATCH, DELETE with every status they answer."""

from __future__ import annotations

import uuid

import httpx
from server.srv_helpers import key_url


def _put(http: httpx.Client, ns: str, key: str, value: object, **kw: object) -> httpx.Response:
    return http.put(key_url(ns, key), json={"value": value}, **kw)  # type: ignore[arg-type]


def test_put_then_get_returns_value_version_and_etag(http: httpx.Client, ns: str) -> None:
    r = _put(http, ns, "profile", {"name": "Alice", "n": [1, 2.5, None, True]})
    assert r.status_code == 200
    version = r.json()["version"]
    assert r.headers["etag"] == f'"{version}"'
    g = http.get(key_url(ns, "profile"))
    assert g.status_code == 200
    body = g.json()
    assert body["key"] == "profile"
    assert body["value"] == {"name": "Alice", "n": [1, 2.5, None, True]}
    assert body["version"] == version
    assert body["expires_at"] is None
    assert body["created_at"] == body["updated_at"]
    assert g.headers["etag"] == f'"{version}"'
    assert g.headers["content-type"] == "application/json"


def test_values_keep_their_json_type(http: httpx.Client, ns: str) -> None:
    for i, value in enumerate([5, "5", True, None, 1.5, [], {}, "null", '{"a": 1}']):
        assert _put(http, ns, f"k{i}", value).status_code == 200
        assert http.get(key_url(ns, f"k{i}")).json()["value"] == value
        assert type(http.get(key_url(ns, f"k{i}")).json()["value"]) is type(value)


def test_missing_key_is_404_not_found(http: httpx.Client, ns: str) -> None:
    r = http.get(key_url(ns, "nope"))
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found"
    assert err["namespace"] == ns
    assert err["key"] == "nope"
    assert "nope" in err["message"]


def test_versions_are_monotonic_across_keys_and_recreation(http: httpx.Client, ns: str) -> None:
    v1 = _put(http, ns, "a", 1).json()["version"]
    v2 = _put(http, ns, "b", 1).json()["version"]
    assert http.delete(key_url(ns, "a")).json() == {"deleted": True}
    v3 = _put(http, ns, "a", 1).json()["version"]
    assert v1 < v2 < v3


def test_if_match_success_and_412_with_current_version(http: httpx.Client, ns: str) -> None:
    v = _put(http, ns, "k", 1).json()["version"]
    ok = _put(http, ns, "k", 2, headers={"If-Match": f'"{v}"'})
    assert ok.status_code == 200
    v2 = ok.json()["version"]
    stale = _put(http, ns, "k", 3, headers={"If-Match": f'"{v}"'})
    assert stale.status_code == 412
    err = stale.json()["error"]
    assert err["code"] == "conflict"
    assert err["current_version"] == v2
    assert http.get(key_url(ns, "k")).json()["value"] == 2


def test_if_match_on_absent_key_is_412(http: httpx.Client, ns: str) -> None:
    r = _put(http, ns, "ghost", 1, headers={"If-Match": '"1"'})
    assert r.status_code == 412
    assert r.json()["error"]["current_version"] is None


def test_if_none_match_star_creates_only_once(http: httpx.Client, ns: str) -> None:
    assert _put(http, ns, "once", 1, headers={"If-None-Match": "*"}).status_code == 200
    again = _put(http, ns, "once", 2, headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert again.json()["error"]["code"] == "conflict"
    assert http.get(key_url(ns, "once")).json()["value"] == 1


def test_bad_if_match_header_is_400(http: httpx.Client, ns: str) -> None:
    r = _put(http, ns, "k", 1, headers={"If-Match": '"abc"'})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_argument"


def test_get_if_none_match_gives_304(http: httpx.Client, ns: str) -> None:
    v = _put(http, ns, "k", {"big": "x"}).json()["version"]
    r = http.get(key_url(ns, "k"), headers={"If-None-Match": f'"{v}"'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == f'"{v}"'
    other = http.get(key_url(ns, "k"), headers={"If-None-Match": f'"{v + 1000}"'})
    assert other.status_code == 200


def test_delete_is_idempotent_and_conditional(http: httpx.Client, ns: str) -> None:
    v = _put(http, ns, "k", 1).json()["version"]
    stale = http.delete(key_url(ns, "k"), headers={"If-Match": f'"{v + 1}"'})
    assert stale.status_code == 412
    assert http.delete(key_url(ns, "k"), headers={"If-Match": f'"{v}"'}).json() == {"deleted": True}
    again = http.delete(key_url(ns, "k"))
    assert again.status_code == 200
    assert again.json() == {"deleted": False}
    assert http.get(key_url(ns, "k")).status_code == 404


def test_patch_append_tail_pop(http: httpx.Client, ns: str) -> None:
    url = key_url(ns, "chat")
    r = http.patch(url, json={"append": [{"m": 1}, {"m": 2}]})
    assert r.status_code == 200
    assert r.json()["length"] == 2
    assert isinstance(r.json()["version"], int)
    r = http.patch(url, json={"append": [{"m": 3}], "max_len": 2})
    assert r.json()["length"] == 2
    assert http.get(url).json()["value"] == [{"m": 2}, {"m": 3}]
    assert http.get(url, params={"tail": 1}).json()["value"] == [{"m": 3}]
    assert http.get(url, params={"tail": 0}).json()["value"] == []
    popped = http.patch(url, json={"pop": True}).json()
    assert popped["found"] is True
    assert popped["value"] == {"m": 3}
    assert isinstance(popped["version"], int)
    http.patch(url, json={"pop": True})
    empty = http.patch(url, json={"pop": True}).json()
    assert empty["found"] is False
    assert empty["value"] is None


def test_pop_missing_key(http: httpx.Client, ns: str) -> None:
    r = http.patch(key_url(ns, "none"), json={"pop": True})
    assert r.status_code == 200
    assert r.json()["found"] is False


def test_patch_incr(http: httpx.Client, ns: str) -> None:
    url = key_url(ns, "n")
    assert http.patch(url, json={"incr": 5}).json()["value"] == 5
    r = http.patch(url, json={"incr": -2})
    assert r.json()["value"] == 3
    assert isinstance(r.json()["version"], int)
    assert http.patch(url, json={"incr": 0.5}).json()["value"] == 3.5
    assert http.get(url).json()["value"] == 3.5


def test_type_mismatch_is_409(http: httpx.Client, ns: str) -> None:
    _put(http, ns, "s", "text")
    for body in ({"append": [1]}, {"incr": 1}, {"pop": True}):
        r = http.patch(key_url(ns, "s"), json=body)
        assert r.status_code == 409, body
        assert r.json()["error"]["code"] == "type_mismatch"
    tail = http.get(key_url(ns, "s"), params={"tail": 2})
    assert tail.status_code == 409


def test_malformed_patch_bodies_are_400(http: httpx.Client, ns: str) -> None:
    url = key_url(ns, "k")
    for body in (
        {},
        {"append": [1], "incr": 1},
        {"append": "x"},
        {"incr": "1"},
        {"incr": True},
        {"pop": False},
        {"append": [1], "max_len": 0},
        {"append": [1], "ttl": -1},
    ):
        r = http.patch(url, json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "invalid_argument", body


def test_bad_tail_is_400(http: httpx.Client, ns: str) -> None:
    http.patch(key_url(ns, "l"), json={"append": [1]})
    for tail in ("-1", "x", "1.5"):
        r = http.get(key_url(ns, "l"), params={"tail": tail})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_argument"


def test_put_without_value_or_with_bad_ttl_is_400(http: httpx.Client, ns: str) -> None:
    assert http.put(key_url(ns, "k"), json={"ttl": 5}).status_code == 400
    for ttl in (-1, 0, "5", True, 1e12):
        r = http.put(key_url(ns, "k"), json={"value": 1, "ttl": ttl})
        assert r.status_code == 400, ttl
        assert r.json()["error"]["code"] == "invalid_argument"


def test_ttl_with_testing_clock(http: httpx.Client, ns: str) -> None:
    r = http.put(key_url(ns, "temp"), json={"value": "x", "ttl": 100})
    assert r.status_code == 200
    entry = http.get(key_url(ns, "temp")).json()
    assert entry["expires_at"] is not None
    assert entry["expires_at"] - entry["updated_at"] == 100
    assert http.post("/_testing/clock", json={"advance": 101}).status_code == 200
    assert http.get(key_url(ns, "temp")).status_code == 404
    assert http.get(f"/v1/namespaces/{ns}/keys").json()["keys"] == []


def test_idempotent_patch_retry_applies_once(http: httpx.Client, ns: str) -> None:
    url = key_url(ns, "hist")
    ikey = str(uuid.uuid4())
    first = http.patch(url, json={"append": ["turn-1"]}, headers={"Idempotency-Key": ikey})
    retry = http.patch(url, json={"append": ["turn-1"]}, headers={"Idempotency-Key": ikey})
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json()
    assert http.get(url).json()["value"] == ["turn-1"]
    counter = key_url(ns, "n")
    k2 = str(uuid.uuid4())
    a = http.patch(counter, json={"incr": 1}, headers={"Idempotency-Key": k2}).json()
    b = http.patch(counter, json={"incr": 1}, headers={"Idempotency-Key": k2}).json()
    assert a == b
    assert http.get(counter).json()["value"] == 1
    fresh = http.patch(counter, json={"incr": 1}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert fresh.json()["value"] == 2


def test_idempotency_key_reused_for_other_request_is_400(http: httpx.Client, ns: str) -> None:
    ikey = str(uuid.uuid4())
    url = key_url(ns, "n")
    assert http.patch(url, json={"incr": 1}, headers={"Idempotency-Key": ikey}).status_code == 200
    r = http.patch(url, json={"incr": 7}, headers={"Idempotency-Key": ikey})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_argument"


def test_bad_idempotency_key_is_400(http: httpx.Client, ns: str) -> None:
    r = http.patch(key_url(ns, "n"), json={"incr": 1}, headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 400


def test_unknown_route_and_method_use_the_error_shape(http: httpx.Client) -> None:
    r = http.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = http.post("/v1/namespaces/a/keys/b", json={})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_out_of_range_integers_are_400_not_5xx(http: httpx.Client, ns: str) -> None:
    http.patch(key_url(ns, "l"), json={"append": [1]})
    huge = "9" * 30
    assert http.get(key_url(ns, "l"), params={"tail": huge}).status_code == 400
    assert (
        http.put(key_url(ns, "l"), json={"value": 1}, headers={"If-Match": f'"{huge}"'}).status_code
        == 400
    )
    for op in (
        {"op": "get", "key": "l", "tail": 2**64},
        {"op": "check", "key": "l", "version": 2**63},
        {"op": "set", "key": "l", "value": 1, "if_version": -(2**63) - 1},
        {"op": "append", "key": "l", "items": [1], "max_len": 2**70},
    ):
        r = http.post(f"/v1/namespaces/{ns}/batch", json={"ops": [op]})
        assert r.status_code == 400, op
    big = http.patch(key_url(ns, "n"), json={"incr": 2**80})  # big numbers are fine as values
    assert big.status_code == 200
    assert big.json()["value"] == 2**80
