"""Credentials in a proxy URL or in BOTWIRE_URL never reach an error message, ``repr()`` or the
``BOTWIRE_DEBUG`` log (``_config.shown_url`` masks them, one helper everywhere), and userinfo in
BOTWIRE_URL, which the client never sent, is refused with the fix (BOTWIRE_TOKEN / token=)
instead of being dropped in silence. Before the fix every one of these showed the password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from botwire import InvalidArgument, Memory
from botwire._config import shown_url
from botwire.backends._http_sync import HTTPStore
from botwire.backends._proxy import parse_proxy

SECRET = "S3CRET-PW"
SERVER = "http://127.0.0.1:9"  # never reached: each case is refused before any I/O


@pytest.fixture(autouse=True)
def _no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


@pytest.mark.parametrize(
    ("proxy", "said"),
    [
        (f"socks5://alice:{SECRET}@proxy.corp:1080", "uses socks5://"),
        (f"http://alice:{SECRET}@proxy.corp:31 28", "is not http://"),
        (f"http://alice:{SECRET}@proxy.corp:99999", "a port is 1 to 65535"),
        (f"alice:{SECRET}@proxy.corp:x", "is not http://"),
    ],
)
def test_a_refused_proxy_url_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch, proxy: str, said: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with pytest.raises(InvalidArgument) as info:
        Memory("ns", url=SERVER, retries=0)
    message = str(info.value)
    assert SECRET not in message and said in message
    assert "alice:***@proxy.corp" in message and "(from HTTP_PROXY)" in message


@pytest.mark.parametrize(
    "userinfo",
    [f"bot:{SECRET}@", f"{SECRET}@", f"bot:{SECRET}:x@"],
    ids=["pair", "token", "colons"],
)
@pytest.mark.parametrize("via", ["url", "BOTWIRE_URL"])
def test_credentials_in_the_server_url_are_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, userinfo: str, via: str
) -> None:
    url = f"http://{userinfo}{SERVER.removeprefix('http://')}/prefix"
    if via == "BOTWIRE_URL":
        monkeypatch.setenv("BOTWIRE_URL", url)
    with pytest.raises(InvalidArgument) as info:
        Memory("ns", url=url if via == "url" else None, retries=0)
    message = str(info.value)
    assert SECRET not in message
    assert f"{via} 'http://" in message and "BOTWIRE_TOKEN" in message and "token=" in message
    assert f"'{SERVER}/prefix'" in message  # the URL to use instead


def test_reprs_and_url_messages_mask_the_password() -> None:
    store = HTTPStore(f"http://bot:{SECRET}@127.0.0.1:9", retries=0)  # the class, directly
    try:
        assert SECRET not in repr(store) and "bot:***@127.0.0.1:9" in repr(store)
    finally:
        store.close()
    with pytest.raises(InvalidArgument) as info:
        HTTPStore(f"http://bot:{SECRET}@127.0.0.1:9x")
    assert SECRET not in str(info.value) and "bot:***@" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        Memory("ns", url=f"htp://bot:{SECRET}@127.0.0.1:9")  # a typo: the suggestion is masked
    assert SECRET not in str(info.value) and "did you mean http://bot:***@127.0.0.1:9" in str(
        info.value
    )
    p = parse_proxy(f"http://alice:{SECRET}@proxy.corp:3128")
    assert SECRET not in repr(p) and p.authorization is not None


def test_botwire_debug_never_prints_the_password() -> None:
    code = (
        "from botwire import Memory\n"
        f"m = Memory('ns', url='http://bot:{SECRET}@{SERVER.removeprefix('http://')}')\n"
        "m.set('k', 1)\n"
    )
    env = {**os.environ, "BOTWIRE_DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "InvalidArgument" in out.stderr
    assert SECRET not in out.stderr + out.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@h:1/x?q#f", "http://u:***@h:1/x?q#f"),
        ("https://tok@h", "https://***@h"),
        ("u:p%40ss@h:3128", "u:***@h:3128"),
        ("http://h:1/a@b", "http://h:1/a@b"),  # an @ in the path is no userinfo
        ("http://a@b:c@h", "http://a@b:***@h"),  # the last @ ends the userinfo, as in urllib
        ("sqlite:////tmp/a@b.db", "sqlite:////tmp/a@b.db"),
    ],
)
def test_shown_url(url: str, shown: str) -> None:
    assert shown_url(url) == shown
