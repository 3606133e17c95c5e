"""A GET splices the stored JSON text into its response: byte for byte what decoding the value
and encoding the entry would give, for every JSON type (``api._http.entry_json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from server.srv_helpers import key_url

from botwire import Entry
from botwire._codec import dumps, encode
from botwire._wire import entry_to_wire
from botwire.store import Op, SQLiteStore
from botwire_server.api._http import entry_json

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63 - 1,
    -(2**63),
    10**40,
    -(10**40),
    0.1,
    -0.0,
    1e300,
    5e-324,
    1.5,
    123456789.125,
    "",
    "plain",
    'quote " and \\ backslash',
    "\x00\x01\x1f\x7f",
    "tab\tnew\nline\r",
    "é ключ 中文",
    "🙂🚀",
    "\u2028\u2029",
    "</script>",
    [],
    {},
    [[], {}],
    {"": 1, "a": [1, 2.5, None, True, "x"], "nested": {"deep": [[[{"k": "v"}]]]}},
    {"role": "assistant", "content": "x" * 200, "turn": 7},
    list(range(50)),
]
KEYS = ["k", "a/b", "é🙂", 'q"uote', "back\\slash", "new\nline"]


def _decoded_body(entry: Entry) -> bytes:
    return dumps(entry_to_wire(entry)).encode("utf-8")


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_spliced_entry_equals_the_decoded_one(tmp_path: Path, value: Any) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        for key in KEYS:
            store.batch("ns", [Op("set", key, value=encode(value), ttl=60.0)])
            entry = store.get("ns", key)
            found = store.get_json("ns", key)
            assert entry is not None and found is not None
            assert entry_json(key, *found) == _decoded_body(entry)
            assert json.loads(entry_json(key, *found))["value"] == value
    finally:
        store.close()


@pytest.mark.parametrize("tail", [None, 0, 1, 3, 100])
def test_spliced_lists_and_tails(tmp_path: Path, tail: int | None) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        items = tuple(encode(v) for v in VALUES)
        store.batch("ns", [Op("append", "rows", items=items)])  # list rows
        store.batch("ns", [Op("set", "array", value=encode(VALUES))])  # a JSON array value
        for key in ("rows", "array"):
            entry = store.get("ns", key, tail=tail)
            found = store.get_json("ns", key, tail=tail)
            assert entry is not None and found is not None
            assert entry_json(key, *found) == _decoded_body(entry)
        store.batch("ns", [Op("append", "empty", items=())])
        entry, found = store.get("ns", "empty", tail=tail), store.get_json("ns", "empty", tail=tail)
        assert entry is not None and found is not None
        assert entry_json("empty", *found) == _decoded_body(entry)
    finally:
        store.close()


def test_http_get_body_is_the_compact_encoding(http: httpx.Client, ns: str) -> None:
    for i, value in enumerate(VALUES):
        key = KEYS[i % len(KEYS)]
        assert http.put(key_url(ns, key), json={"value": value}).status_code == 200
        r = http.get(key_url(ns, key))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["etag"] == f'"{r.json()["version"]}"'
        got = r.json()
        assert got["value"] == value and got["key"] == key
        assert r.content == dumps(got).encode("utf-8")  # compact, keys in the same order
    http.patch(key_url(ns, "chat"), json={"append": VALUES})
    r = http.get(key_url(ns, "chat") + "?tail=2")
    assert r.json()["value"] == VALUES[-2:]
    assert r.content == dumps(r.json()).encode("utf-8")
