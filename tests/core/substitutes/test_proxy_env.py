"""``botwire/backends/_proxy.py`` against :mod:`urllib.request`, whose rules it copies: which
``*_proxy`` variable wins (``getproxies_environment``) and which hosts ``NO_PROXY`` exempts
(``proxy_bypass_environment``), on generated environments and host lists. The example cases and
botwire's extensions (CIDR blocks, ``[v6]:port``) are in tests/client_http/transport/test_proxy.py.

Documented difference: a ``*`` anywhere in the ``NO_PROXY`` list exempts every host (as httpx
and curl's own ``*`` do); urllib honours ``*`` only as the whole value.
"""

from __future__ import annotations

import os
import urllib.request
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from botwire.backends._proxy import bypass, env_proxies

NAMES = [
    "HTTP_PROXY",
    "http_proxy",
    "Http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "hTTPS_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "FTP_PROXY",
    "REQUEST_METHOD",
    "HTTP_PROXY_HOST",
    "PROXY",
]
environments = st.dictionaries(
    st.sampled_from(NAMES), st.sampled_from(["", "http://a:1", "http://b:2", "GET"]), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(env=environments)
def test_the_variables_are_read_as_urllib_reads_them(env: dict[str, str]) -> None:
    with mock.patch.dict(os.environ, env, clear=True):
        expected = urllib.request.getproxies_environment()
    assert env_proxies(env) == expected


labels = st.sampled_from(["a", "b", "example", "com", "svc", "Corp", "x1"])
hosts = st.lists(labels, min_size=1, max_size=3).map(".".join)
entries = st.tuples(
    st.sampled_from(["", "."]),
    hosts,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.sampled_from(["", " ", "  "]),
).map(lambda t: f"{t[3]}{t[0]}{t[1]}{t[2]}{t[3]}")
no_proxies = st.lists(entries, max_size=4).map(",".join) | st.sampled_from(["*", "", ","])


def urllib_bypass(host: str, port: int, no_proxy: str) -> bool:
    # urllib is asked with and without the port, as it is for a URL's netloc and its host.
    env = {"no": no_proxy}
    return bool(
        urllib.request.proxy_bypass_environment(f"{host}:{port}", env)
        or urllib.request.proxy_bypass_environment(host, env)
    )


@settings(max_examples=300, deadline=None)
@given(host=hosts, port=st.sampled_from([80, 443, 8080]), no_proxy=no_proxies)
def test_no_proxy_exempts_the_hosts_urllib_exempts(host: str, port: int, no_proxy: str) -> None:
    assert bypass(host, port, no_proxy) == urllib_bypass(host.lower(), port, no_proxy)


def test_a_star_inside_the_list_exempts_every_host_where_urllib_ignores_it() -> None:
    assert bypass("api.example.com", 443, "internal, *")
    assert not urllib_bypass("api.example.com", 443, "internal, *")
    assert bypass("api.example.com", 443, "*") and urllib_bypass("api.example.com", 443, "*")


def test_a_mixed_case_scheme_with_lower_case_suffix_counts_as_lower_case() -> None:
    """Bug fixed (found by the property test above): ``Http_proxy`` was kept under the key
    ``"Http"``, so it neither overrode nor (empty) unset ``HTTP_PROXY`` as urllib has it do."""
    env = {"HTTP_PROXY": "http://up:1", "Http_proxy": ""}
    assert env_proxies(env) == {}
    env = {"HTTP_PROXY": "http://up:1", "Http_proxy": "http://mixed:2"}
    assert env_proxies(env) == {"http": "http://mixed:2"}
