"""A wrong URL is an error, never an empty memory; a rewritten key is refused, never served.

Against a real ``botwire-server`` and a relay that answers like the things found in front of
servers (an HTML 404, a 200 catch-all page, an http→https redirect, a proxy that decodes and
normalises paths), with the sync ``Memory`` and the async ``AsyncMemory``.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.server import ServerProcess

from botwire import BotWireError, KeyRewritten, Memory, Misrouted


def _all_calls(m: Any) -> list[tuple[str, Any]]:
    return [
        ("get", lambda: m.get("k")),
        ("entry", lambda: m.entry("k")),
        ("set", lambda: m.set("k", 1)),
        ("append", lambda: m.append("h", 1)),
        ("delete", lambda: m.delete("k")),
        ("get_many", lambda: m.get_many(["k", "j"])),
        ("list", lambda: m.list()),
        ("usage", lambda: m.usage()),
    ]


@pytest.mark.parametrize("suffix", ["/nope", "/v1/namespaces/other/keys/zz"])
def test_wrong_path_prefix_raises_misrouted_for_every_call(
    client: Any, server: ServerProcess, ns: str, truth: Memory, suffix: str
) -> None:
    """``BOTWIRE_URL=http://host:port/nope``: the server's "no route" 404 is not "no such key".
    A prefix that happens to land inside a key route (``.../keys/zz``) must not read or write
    key ``zz/v1/namespaces/<ns>/keys/k`` of namespace ``other`` either."""
    wrong = server.url + suffix
    m = client(ns, url=wrong, retries=0)
    for name, call in _all_calls(m):
        with pytest.raises(Misrouted) as info:
            call()
        text = str(info.value)
        assert wrong + "/v1/namespaces/" + ns in text, (name, text)
        assert "BOTWIRE_URL" in text, (name, text)
        assert info.value.namespace == ns
    assert truth.get_many(["k", "h"]) == {}  # nothing was written anywhere
    other = Memory("other", url=server.url)
    assert other.list() == []
    other.close()


@pytest.mark.parametrize("page", ["html_404", "html_200"])
def test_an_html_page_is_misrouted_not_empty_and_not_retried(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory, page: str
) -> None:
    truth.set("k", "stored")
    m = client(ns, url=proxy.url)  # default retries: a misroute must still not be retried
    proxy.set_script([page] * 3)
    with pytest.raises(Misrouted) as info:
        m.get("k")
    assert "text/html" in str(info.value) and proxy.url in str(info.value)
    assert "unexpected response body" not in str(info.value)
    assert proxy.counts[page] == 1
    with pytest.raises(Misrouted):
        m.append("h", "x")
    assert truth.get("h") is None


def test_redirect_is_reported_with_status_and_location(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    m = client(ns, url=proxy.url)
    proxy.set_script(["redirect_301"] * 2)
    with pytest.raises(Misrouted) as info:
        m.set("k", 1)
    err = info.value
    assert err.details["status"] == 301
    assert err.details["location"].startswith("https://127.0.0.1:")
    assert "HTTP 301" in str(err) and err.details["location"] in str(err)
    assert "https://" in str(err) and "BOTWIRE_URL" in str(err)
    assert proxy.counts["redirect_301"] == 1  # never followed, never retried
    assert truth.get("k") is None


def test_normalising_proxy_cannot_touch_another_key(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    """``delete('a/../b')`` through a proxy that normalises paths must not delete ``b``: the
    server sees the path's key differ from ``X-BotWire-Key`` and refuses before storage."""
    truth.set("b", "precious")
    m = client(ns, url=proxy.url)
    calls = [
        lambda: m.delete("a/../b"),
        lambda: m.set("a/../b", "overwritten"),
        lambda: m.append("a/../b", "x"),
        lambda: m.get("a/../b"),
    ]
    for call in calls:
        proxy.set_script(["rewrite_path"])
        with pytest.raises(KeyRewritten) as info:
            call()
        assert isinstance(info.value, BotWireError) and isinstance(info.value, Misrouted)
        text = str(info.value)
        assert "'a/../b'" in text and "'b'" in text and "proxy_pass" in text
    assert proxy.counts["rewrite_path"] == len(calls)  # refused once each, never retried
    assert truth.entry("b").value == "precious"  # type: ignore[union-attr]


def test_client_checks_the_echoed_key_when_the_server_cannot(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    """Without the echo header (an older server), the key in the answer still gives it away."""
    truth.set("b", "someone else's")
    m = client(ns, url=proxy.url)
    proxy.set_script(["rewrite_path_no_echo"])
    with pytest.raises(KeyRewritten) as info:
        m.get("a/../b")
    assert info.value.details["echoed_key"] == "b"
    proxy.set_script(["rewrite_path_no_echo"])
    with pytest.raises(KeyRewritten):  # a 404 naming another key is not "absent" either
        m.get("x/../absent")


def test_keys_with_dots_and_slashes_round_trip_when_nothing_rewrites(
    client: Any, server: ServerProcess, ns: str
) -> None:
    """The echo check never refuses an honest request (proxy-free, odd keys)."""
    m = client(ns, url=server.url)
    for key in ["a/../b", "..", ".", "a%2Fb", "sp ace", "ü/é", "q?x#y", "%"]:
        m.set(key, key)
        assert m.get(key) == key
        assert m.append(key + "/l", 1) == 1
        assert m.delete(key) is True
        assert m.get(key) is None


def _raw(server: ServerProcess, method: str, path: str, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_server_refuses_a_key_that_differs_from_the_echo(
    server: ServerProcess, ns: str, truth: Memory
) -> None:
    truth.set("b", 1)
    path = f"/v1/namespaces/{ns}/keys/b"
    status, body = _raw(server, "DELETE", path, {"X-BotWire-Key": "a%2F..%2Fb"})
    assert status == 400 and body["error"]["code"] == "key_rewritten"
    assert "a/../b" in body["error"]["message"] and "proxy_pass" in body["error"]["message"]
    assert truth.get("b") == 1
    status, _ = _raw(server, "DELETE", f"/memory/{ns}/b", {"X-BotWire-Key": "c"})
    assert status == 400 and truth.get("b") == 1  # the compatibility routes check it too
    assert _raw(server, "GET", path, {"X-BotWire-Key": "b"})[0] == 200  # same key: served
    assert _raw(server, "GET", path, {})[0] == 200  # no header (curl, old clients): served


def test_cli_reports_a_wrong_url_instead_of_no_key(server: ServerProcess, ns: str) -> None:
    wrong = server.url + "/nope"
    env = {**os.environ, "BOTWIRE_URL": wrong}
    out = subprocess.run(
        [sys.executable, "-m", "botwire.cli", "get", ns, "k0001"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 4, out
    assert "no key" not in out.stderr
    assert wrong in out.stderr and "BOTWIRE_URL" in out.stderr
