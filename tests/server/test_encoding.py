"""Keys travel percent-encoded and are decoded from the raw path exactly once."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server.srv_helpers import key_url

TRICKY_KEYS = [
    "a/b",
    "a#b",
    "x?y=1",
    "..",
    ".",
    "%",
    "%2F",
    "%25",
    "a b",
    " ",
    "🙂",
    "ключ",
    "a/../b",
    "/leading",
    "trailing/",
    "//",
    "a:b@c",
    "tab\there",
    "new\nline",
    "+plus",
    "&amp;",
    "keys/x",
    "é" * 512,  # 1024 bytes
]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_tricky_keys_round_trip(http: httpx.Client, ns: str, key: str) -> None:
    r = http.put(key_url(ns, key), json={"value": key})
    assert r.status_code == 200, r.text
    got = http.get(key_url(ns, key))
    assert got.status_code == 200
    assert got.json()["key"] == key
    assert got.json()["value"] == key
    listed = http.get(f"/v1/namespaces/{ns}/keys").json()["keys"]
    assert [k["key"] for k in listed] == [key]
    assert http.delete(key_url(ns, key)).json() == {"deleted": True}


def test_encoded_slash_and_literal_slash_are_distinct_from_prefix(
    http: httpx.Client, ns: str
) -> None:
    http.put(key_url(ns, "a"), json={"value": "plain a"})
    http.put(key_url(ns, "a#b"), json={"value": "hash"})
    http.put(key_url(ns, "x?y=1"), json={"value": "query"})
    assert http.get(key_url(ns, "a")).json()["value"] == "plain a"
    assert http.get(key_url(ns, "a#b")).json()["value"] == "hash"
    assert http.get(key_url(ns, "x")).status_code == 404


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=40,
    )
)
def test_any_key_round_trips(server: object, key: str) -> None:
    url = server.url  # type: ignore[attr-defined]
    with httpx.Client(base_url=url) as http:
        r = http.put(key_url("prop-keys", key), json={"value": [key]})
        assert r.status_code == 200, (key, r.text)
        got = http.get(key_url("prop-keys", key)).json()
        assert got["key"] == key
        assert got["value"] == [key]


def test_invalid_utf8_key_is_400_invalid_key(http: httpx.Client, ns: str) -> None:
    for raw in ("%FF", "a%C3", "%ED%A0%80"):  # invalid byte, truncated, surrogate
        r = http.get(f"/v1/namespaces/{ns}/keys/{raw}")
        assert r.status_code == 400, raw
        assert r.json()["error"]["code"] == "invalid_key"
        r = http.put(f"/v1/namespaces/{ns}/keys/{raw}", json={"value": 1})
        assert r.status_code == 400


def test_bad_keys_are_400(http: httpx.Client, ns: str) -> None:
    for raw in ("%00", "a%00b", "x" * 1025):
        r = http.put(f"/v1/namespaces/{ns}/keys/{raw}", json={"value": 1})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_key"
    empty = http.get(f"/v1/namespaces/{ns}/keys/")
    assert empty.status_code == 400
    assert empty.json()["error"]["code"] == "invalid_key"


BAD_NAMESPACES = ["has%20space", "%2E%2E", "%2E", "x" * 129, "caf%C3%A9", "a%23b"]


@pytest.mark.parametrize("bad_ns", BAD_NAMESPACES)
def test_bad_namespaces_are_400(http: httpx.Client, bad_ns: str) -> None:
    r = http.get(f"/v1/namespaces/{bad_ns}/keys/k")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_namespace"
    assert http.get(f"/v1/namespaces/{bad_ns}").status_code == 400
    assert http.get(f"/v1/namespaces/{bad_ns}/keys").status_code == 400


def test_namespace_with_every_legal_character(http: httpx.Client) -> None:
    ns = "Az09._-:@user"
    assert http.put(key_url(ns, "k"), json={"value": 1}).status_code == 200
    assert http.get(key_url(ns, "k")).json()["value"] == 1


def test_encoded_slash_in_namespace_is_refused(http: httpx.Client) -> None:
    # "a%2Fb" decodes to a path of another shape: no route (404) or a bad namespace (400).
    r = http.get("/v1/namespaces/a%2Fb/keys/k")
    assert r.status_code in (400, 404)
    assert r.json()["error"]["code"] in ("invalid_namespace", "not_found")
