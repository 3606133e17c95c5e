"""Settings the transport takes from arguments and the environment: a scheme in any case
(``HTTP://``: RFC 3986 makes schemes case-insensitive; before the fix "unknown scheme"), and
numbers a socket or the backoff cannot take (``inf``, ``nan``, ``1e10``, ``1e9`` retries; before
the fix a bare OverflowError or ValueError) refused naming the variable, the rule and the fix."""

from __future__ import annotations

import pytest
from client_http.transport.conftest import Client
from support.server import ServerProcess

from botwire import InvalidArgument, Memory


@pytest.mark.parametrize("scheme", ["HTTP", "Http", "hTtP"])
def test_a_scheme_in_any_case_reaches_the_server(
    server: ServerProcess, ns: str, kind: str, scheme: str
) -> None:
    url = scheme + server.url.removeprefix("http")
    with Client(kind, ns, url=url, retries=0) as m:
        m.set("k", scheme)
        assert m.get("k") == scheme
        assert m.url == server.url  # one spelling: the same settings share one backend


def test_an_https_scheme_in_capitals_is_https() -> None:
    m = Memory("ns", url="HTTPS://127.0.0.1:9/Pre")
    try:
        assert m.url == "https://127.0.0.1:9/Pre"
    finally:
        m.close()


@pytest.mark.parametrize(
    ("var", "value", "rule"),
    [
        ("BOTWIRE_TIMEOUT", "inf", "at most 86400"),
        ("BOTWIRE_TIMEOUT", "1e10", "at most 86400"),
        ("BOTWIRE_TIMEOUT", "nan", "seconds > 0"),
        ("BOTWIRE_TIMEOUT", "0", "seconds > 0"),
        ("BOTWIRE_RETRIES", "inf", "whole number from 0 to 1000"),
        ("BOTWIRE_RETRIES", "nan", "whole number from 0 to 1000"),
        ("BOTWIRE_RETRIES", "1e9", "whole number from 0 to 1000"),
        ("BOTWIRE_RETRIES", "1.5", "whole number from 0 to 1000"),
        ("BOTWIRE_RETRIES", "-1", "whole number from 0 to 1000"),
    ],
)
def test_numbers_out_of_range_in_the_environment_are_refused_naming_the_variable(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, var: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidArgument) as info:
        Memory("ns", url=server.url)
    message = str(info.value)
    assert f"{var}='{value}'" in message and rule in message and f"set {var}=" in message


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("timeout", float("inf")),
        ("timeout", 1e10),
        ("timeout", True),
        ("retries", float("inf")),
        ("retries", 10**400),
        ("retries", 2.5),
    ],
)
def test_numbers_out_of_range_as_arguments_are_refused_naming_the_argument(
    server: ServerProcess, kind: str, arg: str, value: object
) -> None:
    with pytest.raises(InvalidArgument) as info:
        Client(kind, "ns", url=server.url, **{arg: value})
    assert f"{arg}=" in str(info.value) and f"pass {arg}=" in str(info.value)


def test_the_largest_settings_still_work(server: ServerProcess, ns: str, kind: str) -> None:
    with Client(kind, ns, url=server.url, timeout=86400, retries=1000) as m:
        m.set("k", 1)
        assert m.get("k") == 1
