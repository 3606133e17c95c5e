"""The URL helpers that spare a cold start ``urllib.parse``, against ``urllib.parse``: percent-
encoding of keys and query values (``_wire.quote``), the server URL split (``Target.parse``) and
the percent-decoding of proxy credentials (``_proxy._unquote``)."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botwire import InvalidArgument
from botwire._wire import quote
from botwire.backends._http import Target
from botwire.backends._proxy import _unquote


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8")))
def test_quote_is_urllib_quote_with_nothing_safe(text: str) -> None:
    assert quote(text) == urllib.parse.quote(text, safe="")


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from(list("%abcdefABCDEFxyz0129:@/é+ ")), max_size=12))
def test_credentials_decode_as_urllib_unquote_decodes_them(text: str) -> None:
    assert _unquote(text) == urllib.parse.unquote(text)


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=6))
def test_percent_escaped_bytes_decode_as_urllib_unquote_decodes_them(text: bytes) -> None:
    escaped = "".join(f"%{b:02x}" if i % 2 else f"%{b:02X}" for i, b in enumerate(text))
    assert _unquote(escaped) == urllib.parse.unquote(escaped)


hosts = (
    st.lists(
        st.sampled_from(["api", "Memory", "example", "com", "x-1"]), min_size=1, max_size=3
    ).map(".".join)
    | st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    | st.sampled_from(["[::1]", "[2001:DB8::5]", "[fe80::1:2]"])
)
urls = st.tuples(
    st.sampled_from(["http://", "https://", "HTTPS://", "Http://"]),
    st.sampled_from(["", "user@", "user:p%40ss@"]),
    hosts,
    st.sampled_from(["", ":1", ":80", ":443", ":8080", ":65535"]),
    st.sampled_from(["", "/", "/botwire", "/a/b/", "/Pre%20fix//"]),
    st.sampled_from(["", "?x=1", "#frag", "?a=/b#c"]),
).map("".join)


@settings(max_examples=250, deadline=None)
@given(url=urls)
def test_a_server_url_splits_as_urlsplit_splits_it(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    target = Target.parse(url)
    assert target.tls is (parts.scheme == "https")
    assert target.host == parts.hostname
    assert target.port == (parts.port or (443 if target.tls else 80))
    assert target.prefix == parts.path.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["ftp://h", "h:80", "http://", "http://:80", "http://h:0", "http://h:99999", "http://h:8a"],
)
def test_urls_urlsplit_would_accept_or_misread_are_refused_with_the_form(url: str) -> None:
    with pytest.raises(InvalidArgument, match=r"http\(s\)://host\[:port\]"):
        Target.parse(url)
