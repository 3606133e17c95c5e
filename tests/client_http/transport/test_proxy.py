"""Proxies like the ecosystem: ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``
(upper and lower case, urllib's rules), absolute-form requests through a real tinyproxy, and
``CONNECT`` tunnels for https (TLS end to end with nginx behind). ``Memory`` and
``AsyncMemory`` take the same path. Before the fix the sync client ignored every variable.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_http.transport.conftest import Client
from support.nginx import Nginx, running_nginx
from support.server import ServerProcess
from support.tinyproxy import TinyProxy, running_tinyproxy

from botwire import BotWireError, InvalidArgument, Unavailable
from botwire.backends._proxy import bypass, env_proxies, parse_proxy, proxy_for


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    with running_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess) -> Iterator[Nginx]:
    with running_nginx(tmp_path_factory.mktemp("nginx"), server.port) as n:
        yield n


def _proxied(proxy: TinyProxy, before: int, needle: str) -> int:
    """How many requests tinyproxy logged since ``before`` characters that mention ``needle``."""
    return sum(1 for line in proxy.log()[before:].splitlines() if needle in line)


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_http_server_through_an_http_proxy(
    server: ServerProcess,
    tinyproxy: TinyProxy,
    ns: str,
    kind: str,
    var: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(var, tinyproxy.url)
    before = len(tinyproxy.log())
    with Client(kind, ns, url=server.url, timeout=5, retries=0) as m:
        m.set("k", {"via": "proxy"})
        assert m.get("k") == {"via": "proxy"}
        assert m.append("h", 1) == 1
    # absolute-form request lines, as a forward proxy needs them
    assert _proxied(tinyproxy, before, f"http://127.0.0.1:{server.port}/v1/namespaces/") >= 3


def test_no_proxy_bypasses_the_proxy(
    server: ServerProcess,
    tinyproxy: TinyProxy,
    ns: str,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: must not be used
    monkeypatch.setenv("no_proxy", "example.com, 127.0.0.1")
    with Client(kind, ns, url=server.url, timeout=5, retries=0) as m:
        m.set("k", 1)
        assert m.get("k") == 1


@pytest.mark.parametrize(
    "proxy", ["http://127.0.0.1:9", "http://no-such-proxy.invalid:3128"], ids=["refused", "dns"]
)
def test_an_unreachable_proxy_is_named_in_the_error(
    server: ServerProcess, ns: str, kind: str, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    """Both clients name it alike (before the fix the async one gave httpx's bare error)."""
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with (
        Client(kind, ns, url=server.url, timeout=2, retries=0) as m,
        pytest.raises(Unavailable) as info,
    ):
        m.get("k")
    assert f"last error ConnectionError: proxy {proxy} (from the environment): " in str(info.value)


def test_https_server_through_a_connect_tunnel(
    nginx: Nginx, tinyproxy: TinyProxy, ns: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # http's proxy: not for https
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.ca_pem))
    before = len(tinyproxy.log())
    with Client(kind, ns, url=nginx.https_url + "/botwire", timeout=5, retries=0) as m:
        m.set("k", {"via": "tunnel"})
        assert m.get("k") == {"via": "tunnel"}
    assert _proxied(tinyproxy, before, "CONNECT") >= 1


def test_proxy_credentials_become_proxy_authorization(
    server: ServerProcess, tmp_path: Path, ns: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_tinyproxy(tmp_path / "auth", extra="BasicAuth agent s3cret\n") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with (
            Client(kind, ns, url=server.url, timeout=5, retries=0) as m,
            pytest.raises(BotWireError, match="407"),
        ):
            m.get("k")  # the proxy's 407 is an error, never an empty memory
        authed = proxy.url.replace("http://", "http://agent:s%33cret@")  # percent-decoded
        monkeypatch.setenv("HTTP_PROXY", authed)
        with Client(kind, ns, url=server.url, timeout=5, retries=0) as m:
            m.set("k", 2)
            assert m.get("k") == 2


def test_a_refused_tunnel_is_not_retried(
    nginx: Nginx, tmp_path: Path, ns: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy answering CONNECT with 407 (credentials) is a configuration error: raised at
    once, naming the proxy and the fix, by both clients (the async one retried it, 8 times by
    default, each a new CONNECT)."""
    with running_tinyproxy(tmp_path / "auth", extra="BasicAuth agent s3cret\n") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(nginx.ca_pem))
        before = len(proxy.log())
        with (
            Client(kind, ns, url=nginx.https_url + "/botwire", timeout=5, retries=3) as m,
            pytest.raises(BotWireError, match="407") as info,
        ):
            m.get("k")
        assert "refused to open a tunnel" in str(info.value) and "NO_PROXY" in str(info.value)
        assert _proxied(proxy, before, "): CONNECT ") == 1, proxy.log()[before:]  # one request


# -- the rules, against urllib's own implementation ---------------------------------------------

ENVIRONMENTS = [
    {"HTTP_PROXY": "http://up:3128"},
    {"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:2"},  # lower case wins
    {"HTTP_PROXY": "http://up:2", "http_proxy": ""},  # an empty lower-case one unsets
    {"HTTP_PROXY": "http://up:2", "REQUEST_METHOD": "GET"},  # CGI: httpoxy
    {"http_proxy": "http://low:1", "REQUEST_METHOD": "GET"},
    {"HTTPS_PROXY": "http://s:1", "ALL_PROXY": "http://a:2"},
    {"ALL_PROXY": "http://a:2", "NO_PROXY": "*"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_variables_are_read_as_urllib_reads_them(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_proxies() == urllib.request.getproxies_environment()


@pytest.mark.parametrize(
    ("host", "port", "no_proxy"),
    [
        ("api.example.com", 443, "example.com"),
        ("api.example.com", 443, ".example.com"),
        ("example.com", 443, ".example.com"),
        ("notexample.com", 443, "example.com"),
        ("EXAMPLE.com", 80, "example.COM"),
        ("10.1.2.3", 80, "10.1.2.3"),
        ("10.1.2.3", 80, "10.1.2.30"),
        ("svc", 8765, "svc:8765"),
        ("svc", 8765, "svc:80"),
        ("a.b", 1, " , a.b ,"),
        ("x", 1, "*"),
    ],
)
def test_no_proxy_matches_like_urllib(host: str, port: int, no_proxy: str) -> None:
    expected = urllib.request.proxy_bypass_environment(
        f"{host}:{port}", {"no": no_proxy}
    ) or urllib.request.proxy_bypass_environment(host, {"no": no_proxy})
    assert bypass(host, port, no_proxy) == expected


def test_no_proxy_extensions_cidr_and_ipv6() -> None:
    assert bypass("10.20.30.40", 80, "10.0.0.0/8")
    assert not bypass("11.0.0.1", 80, "10.0.0.0/8")
    assert not bypass("tenant10.example", 80, "10.0.0.0/8")
    assert bypass("::1", 80, "::1")
    assert bypass("::1", 8080, "[::1]:8080")


def test_https_uses_https_proxy_and_http_uses_http_proxy() -> None:
    env = {"HTTP_PROXY": "http://h:1", "HTTPS_PROXY": "http://s:2", "NO_PROXY": "internal"}
    assert proxy_for(False, "x", 80, env).host == "h"  # type: ignore[union-attr]
    assert proxy_for(True, "x", 443, env).host == "s"  # type: ignore[union-attr]
    assert proxy_for(True, "db.internal", 443, env) is None
    assert proxy_for(True, "x", 443, {}) is None
    p = parse_proxy("user:p%40ss@proxy.corp:3128")
    assert (p.host, p.port, p.url) == ("proxy.corp", 3128, "http://proxy.corp:3128")
    assert p.authorization == "Basic dXNlcjpwQHNz"  # user:p@ss, never shown in messages


def test_a_proxy_scheme_botwire_cannot_speak_is_refused_with_the_fix() -> None:
    with pytest.raises(InvalidArgument, match="NO_PROXY"):
        parse_proxy("socks5://127.0.0.1:1080")
