"""Issue 13 item 6: client mistakes are 4xx answers with DESIGN §4's error tree and leave no
traceback in the log; signed tokens with odd claims are 401, never 500 and never accepted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from server.srv_helpers import SECRET
from support.server import ServerProcess, running_server

from botwire import BotWireError, Memory, NotSerializable
from botwire._wire import key_path


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("errors") / "e.db") as s:
        yield s


def test_incr_out_of_range_is_a_400_not_a_503(srv: ServerProcess) -> None:
    http = httpx.Client(base_url=srv.url, headers={"Content-Type": "application/json"})
    url = key_path("nums", "f")
    assert http.put(url, json={"value": 1.5}).status_code == 200
    huge = b"9" * 400  # a 400-digit int: float + int overflows
    r = http.patch(url, content=b'{"incr":' + huge + b"}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "not_serializable"
    assert r.json()["error"]["key"] == "f"
    big = b"9" * 4300  # 4,300 + 4,300 digits: past Python's int-to-text limit
    url = key_path("nums", "i")
    assert http.put(url, content=b'{"value":' + big + b"}").status_code == 200
    r = http.patch(url, content=b'{"incr":' + big + b"}")
    assert r.status_code == 400, r.text
    assert http.get(url).json()["value"] == int(big)  # nothing stored is lost
    assert "Traceback" not in srv.log() and '"level": "error"' not in srv.log()


def test_the_client_does_not_retry_it(srv: ServerProcess) -> None:
    with Memory("nums2", url=srv.url, retries=3) as mem:
        mem.set("f", 1.5)
        started = time.monotonic()
        with pytest.raises(NotSerializable):
            mem.incr("f", 10**400)
        assert time.monotonic() - started < 5  # no backoff rounds
        assert mem.get("f") == 1.5


@pytest.fixture(scope="module")
def auth_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # the secret through the environment, so the test also runs against older servers
    db = tmp_path_factory.mktemp("auth13") / "a.db"
    with running_server(database=db, env={"BOTWIRE_TOKEN_SECRET": SECRET}) as s:
        yield s


def _signed(**claims: Any) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


FAR = int(time.time()) + 3600
BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "perm as a list": {"ns": ["*"], "perm": ["admin"]},
    "perm as a dict": {"ns": ["*"], "perm": {"admin": True}},
    "perm as a number": {"ns": ["*"], "perm": 2},
    "exp as a string": {"ns": ["*"], "perm": "write", "exp": "9999999999"},
    "exp as a float string": {"ns": ["*"], "perm": "write", "exp": "1e20"},
    "exp as a list": {"ns": ["*"], "perm": "write", "exp": [FAR]},
    "exp as true": {"ns": ["*"], "perm": "write", "exp": True},
    "nbf as a string": {"ns": ["*"], "perm": "write", "nbf": "0"},
    "nbf in the future": {"ns": ["*"], "perm": "write", "nbf": FAR},
    "iat as a dict": {"ns": ["*"], "perm": "write", "iat": {}},
    "ns as a number": {"ns": 7, "perm": "write"},
    "ns as an empty list": {"ns": [], "perm": "write"},
    "ns with a non-string": {"ns": ["a", 1], "perm": "write"},
    "unknown claim": {"ns": ["*"], "perm": "write", "role": "root"},
    "aud claim": {"ns": ["*"], "perm": "write", "aud": "x"},
    "sub as a number": {"ns": ["*"], "perm": "write", "sub": 1},
    "expired": {"ns": ["*"], "perm": "write", "exp": int(time.time()) - 10},
}


@pytest.mark.parametrize("case", BAD_CLAIMS)
def test_odd_token_claims_are_401(auth_srv: ServerProcess, case: str) -> None:
    token = _signed(**BAD_CLAIMS[case])
    for method in ("GET", "PUT"):
        r = httpx.request(
            method,
            auth_srv.url + key_path("t1", "k"),
            json={"value": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 401, (case, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
    assert "Traceback" not in auth_srv.log()


def test_admin_grants_write_on_covered_namespaces_only(auth_srv: ServerProcess) -> None:
    """What 'admin' grants (documented in auth.py and docs/server.md): write and retention
    policies, on its namespaces, no more."""
    token = _signed(ns=["tenant-1-*"], perm="admin", exp=FAR)
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.put(auth_srv.url + key_path("tenant-1-a", "k"), json={"value": 1}, headers=headers)
    assert r.status_code == 200
    r = httpx.get(auth_srv.url + key_path("tenant-2-a", "k"), headers=headers)
    assert r.status_code == 403
    assert (
        httpx.delete(auth_srv.url + "/v1/namespaces/tenant-2-a", headers=headers).status_code == 403
    )
    with pytest.raises(BotWireError):
        Memory("tenant-2-a", url=auth_srv.url, token=token).set("k", 1)
    # issue 18: the one thing admin adds is the retention policy, on covered namespaces only
    policy = "/v1/namespaces/{}/policy"
    body = {"max_list_len": 5}
    r = httpx.put(auth_srv.url + policy.format("tenant-1-a"), json=body, headers=headers)
    assert r.status_code == 200, r.text
    r = httpx.put(auth_srv.url + policy.format("tenant-2-a"), json=body, headers=headers)
    assert r.status_code == 403
