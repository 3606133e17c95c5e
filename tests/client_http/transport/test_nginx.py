"""Behind a real nginx: TLS termination with a private CA (trustme), a path prefix (the safe
config and the common normalising one), ``keepalive_timeout 1s`` and ``keepalive_requests 3``
(so nginx closes idle connections and answers every 3rd request with ``Connection: close``).
Sync and async.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from client_http.transport.conftest import Client
from support.nginx import Nginx, running_nginx
from support.server import ServerProcess

from botwire import KeyRewritten, TLSError

KEYS = ["a/../b", "a%2Fb", "x y", "#?&=", "..", ".", "é🙂", "trailing/", "//double"]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess) -> Iterator[Nginx]:
    with running_nginx(tmp_path_factory.mktemp("nginx"), server.port) as n:
        yield n


@pytest.fixture
def trust_test_ca(nginx: Nginx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.ca_pem))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _handshake_failures(nginx: Nginx) -> int:
    return sum(
        1
        for line in nginx.log().splitlines()
        if "SSL handshake" in line or "SSL_do_handshake() failed" in line
    )


@pytest.mark.usefixtures("trust_test_ca")
def test_tls_and_safe_prefix_keep_every_key_intact(
    nginx: Nginx, server: ServerProcess, ns: str, kind: str
) -> None:
    with Client(kind, ns, url=nginx.https_url + "/botwire", timeout=5, retries=0) as m:
        for i, key in enumerate(KEYS):
            m.set(key, i)
        m.set("b", "bee")
        assert m.get_many(KEYS) == {k: i for i, k in enumerate(KEYS)}
        for i, key in enumerate(KEYS):
            assert m.get(key) == i
        assert m.delete("a/../b") is True
        assert m.get("b") == "bee"
        assert sorted(m.list()) == sorted([*KEYS[1:], "b"])
    direct = Client("sync", ns, url=server.url)
    with direct:
        assert direct.get("b") == "bee" and direct.get("..") == 4


def test_an_untrusted_certificate_is_a_tls_error_at_once_with_the_fix(
    nginx: Nginx, ns: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system store: no test CA in it
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    errors_before = _handshake_failures(nginx)
    with (
        Client(kind, ns, url=nginx.https_url + "/botwire", timeout=5, retries=3) as m,
        pytest.raises(TLSError) as info,
    ):
        m.get("k")
    message = str(info.value)
    assert "SSL_CERT_FILE" in message and nginx.https_url in message
    print(f"FIGURE tls {kind}: {message[:160]}...")
    time.sleep(0.2)  # nginx writes its log line after the handshake
    assert _handshake_failures(nginx) - errors_before == 1  # one attempt: not retried


@pytest.mark.usefixtures("trust_test_ca")
def test_short_keepalive_and_connection_close_cost_no_failed_call(
    nginx: Nginx, ns: str, kind: str
) -> None:
    """nginx closes a connection idle for 1 s and after every 3rd request: with ``retries=0``
    every call must still succeed, each sent exactly once."""
    before = len(nginx.access_log())
    calls = 0
    with Client(kind, ns, url=nginx.https_url + "/botwire", timeout=5, retries=0) as m:
        for round_ in range(4):
            for i in range(4):
                m.set(f"k{i}", round_)
                calls += 1
            assert m.get("k3") == round_
            calls += 1
            if round_ % 2 == 0:
                time.sleep(1.3)  # past keepalive_timeout: nginx closed it
    time.sleep(0.2)
    assert len(nginx.access_log()) - before == calls


def test_a_normalising_prefix_config_raises_instead_of_touching_another_key(
    nginx: Nginx, server: ServerProcess, ns: str, kind: str
) -> None:
    """``location /norm/ { proxy_pass http://up/; }`` decodes and normalises the path: key
    ``a/../b`` arrives as ``b``. The client must refuse, and ``b`` must stay untouched."""
    with Client("sync", ns, url=server.url) as direct:
        direct.set("b", "bee")
        with Client(kind, ns, url=nginx.http_url + "/norm", timeout=5, retries=0) as m:
            with pytest.raises(KeyRewritten):
                m.delete("a/../b")
            with pytest.raises(KeyRewritten):
                m.get("a/../b")
        assert direct.get("b") == "bee"
