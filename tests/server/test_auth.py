"""The auth matrix (DESIGN §7): tokens in the header only, scopes, permissions, expiry."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import warnings

import httpx
import jwt
import pytest
from server.srv_helpers import SECRET, key_url
from support.server import ServerProcess


def _token(
    ns: list[str],
    perm: str = "write",
    exp: float | None = 3600,
    secret: str = SECRET,
    **extra: object,
) -> str:
    claims: dict[str, object] = {"ns": ns, "perm": perm, **extra}
    if exp is not None:
        claims["exp"] = int(time.time() + exp)
    return jwt.encode(claims, secret, algorithm="HS256")


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def http(auth_server: ServerProcess):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=auth_server.url) as client:
        yield client


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_no_token_is_401_everywhere(http: httpx.Client) -> None:
    for method, url in (
        ("GET", key_url("t1", "k")),
        ("PUT", key_url("t1", "k")),
        ("GET", "/v1/namespaces/t1/keys"),
        ("GET", "/v1/namespaces/t1"),
        ("POST", "/v1/namespaces/t1/batch"),
        ("GET", "/memory/t1/k"),
        ("DELETE", "/v1/namespaces/t1"),
    ):
        _assert_401(http.request(method, url, json={"value": 1}))


def test_write_token_in_scope(http: httpx.Client) -> None:
    tok = _token(["tenant-42-*"])
    r = http.put(key_url("tenant-42-alice", "k"), json={"value": 1}, headers=_h(tok))
    assert r.status_code == 200
    assert http.get(key_url("tenant-42-alice", "k"), headers=_h(tok)).json()["value"] == 1
    assert http.delete("/v1/namespaces/tenant-42-alice", headers=_h(tok)).status_code == 200


def test_glob_scope_excludes_other_namespaces(http: httpx.Client) -> None:
    tok = _token(["tenant-42-*", "shared"])
    for ns in ("tenant-43-bob", "tenant-420", "shared2", "xtenant-42-a"):
        r = http.get(key_url(ns, "k"), headers=_h(tok))
        assert r.status_code == 403, ns
        assert r.json()["error"]["code"] == "forbidden"
    assert http.get(key_url("shared", "k"), headers=_h(tok)).status_code == 404
    assert http.get(key_url("tenant-42-", "k"), headers=_h(tok)).status_code == 404


def test_read_only_token_cannot_write(http: httpx.Client) -> None:
    writer, reader = _token(["ro-*"]), _token(["ro-*"], perm="read")
    http.put(key_url("ro-1", "k"), json={"value": 1}, headers=_h(writer))
    assert http.get(key_url("ro-1", "k"), headers=_h(reader)).status_code == 200
    assert http.get("/v1/namespaces/ro-1/keys", headers=_h(reader)).status_code == 200
    assert http.get("/v1/namespaces/ro-1", headers=_h(reader)).status_code == 200
    reads = {
        "ops": [{"op": "get", "key": "k"}, {"op": "check", "key": "k", "version": None}],
        "atomic": False,
    }
    assert http.post("/v1/namespaces/ro-1/batch", json=reads, headers=_h(reader)).status_code == 200
    for method, url, body in (
        ("PUT", key_url("ro-1", "k"), {"value": 2}),
        ("PATCH", key_url("ro-1", "k"), {"incr": 1}),
        ("DELETE", key_url("ro-1", "k"), None),
        ("DELETE", "/v1/namespaces/ro-1", None),
        ("POST", "/v1/namespaces/ro-1/batch", {"ops": [{"op": "set", "key": "k", "value": 3}]}),
        ("PUT", "/memory/ro-1/k", {"value": "x"}),
        ("DELETE", "/memory/ro-1/k", None),
    ):
        r = http.request(method, url, json=body, headers=_h(reader))
        assert r.status_code == 403, (method, url)
        assert r.json()["error"]["code"] == "forbidden"
    assert http.get(key_url("ro-1", "k"), headers=_h(reader)).json()["value"] == 1


def test_admin_token_can_write(http: httpx.Client) -> None:
    tok = _token(["adm"], perm="admin")
    assert http.put(key_url("adm", "k"), json={"value": 1}, headers=_h(tok)).status_code == 200


def test_expired_token_is_401(http: httpx.Client) -> None:
    _assert_401(http.get(key_url("exp", "k"), headers=_h(_token(["*"], exp=-10))))


def test_tampered_token_is_401(http: httpx.Client) -> None:
    tok = _token(["tenant-1"])
    header, payload, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["ns"] = ["*"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_401(http.get(key_url("tenant-2", "k"), headers=_h(f"{header}.{forged}.{sig}")))
    _assert_401(http.get(key_url("tenant-1", "k"), headers=_h(tok[:-3] + "AAA")))


def test_wrong_secret_is_401(http: httpx.Client) -> None:
    _assert_401(http.get(key_url("a", "k"), headers=_h(_token(["*"], secret="x" * 40))))


def test_alg_none_is_401(http: httpx.Client) -> None:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {"ns": ["*"], "perm": "admin", "exp": int(time.time()) + 3600}
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."
        _assert_401(http.get(key_url("a", "k"), headers=_h(unsigned)))


def test_other_algorithms_are_401(http: httpx.Client) -> None:
    with warnings.catch_warnings():  # PyJWT: the key is short for HS512; irrelevant here
        warnings.simplefilter("ignore")
        tok = jwt.encode(
            {"ns": ["*"], "perm": "write", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"
        )
    _assert_401(http.get(key_url("a", "k"), headers=_h(tok)))


def test_bad_claims_are_401(http: httpx.Client) -> None:
    for claims in (
        {"perm": "write"},
        {"ns": ["*"]},
        {"ns": ["*"], "perm": "root"},
        {"ns": 5, "perm": "write"},
        {"ns": [""], "perm": "read"},
    ):
        tok = jwt.encode({**claims, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
        _assert_401(http.get(key_url("a", "k"), headers=_h(tok)))


def test_malformed_headers_are_401(http: httpx.Client) -> None:
    tok = _token(["*"])
    for value in (tok, f"Basic {tok}", "Bearer", "Bearer x", "Bearer not.a.jwt"):
        _assert_401(http.get(key_url("a", "k"), headers={"Authorization": value}))


def test_token_in_query_string_is_ignored(http: httpx.Client) -> None:
    tok = _token(["*"])
    for name in ("token", "access_token", "authorization"):
        _assert_401(http.get(key_url("a", "k"), params={name: tok}))


def test_health_and_metrics_need_no_token(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200
    assert http.get("/metrics").status_code == 200


def test_tokens_never_reach_the_log(http: httpx.Client, auth_server: ServerProcess) -> None:
    tok = _token(["logged-*"])
    http.get(key_url("logged-1", "k"), headers=_h(tok))
    http.get(key_url("logged-1", "k"), params={"access_token": tok})
    bad = tok[:-4] + "AAAA"
    http.get(key_url("logged-1", "k"), headers=_h(bad))
    log = auth_server.log()
    assert "logged-1" in log  # the access log did record the requests
    assert tok not in log
    assert tok.split(".")[2] not in log
    assert bad not in log
    assert SECRET not in log


def test_cli_token_create_is_accepted(http: httpx.Client) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "token",
            "create",
            "--ns",
            "cli-*",
            "--expires",
            "1h",
            "--secret",
            SECRET,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(out, SECRET, algorithms=["HS256"])
    assert claims["ns"] == ["cli-*"]
    assert claims["perm"] == "write"
    assert 3590 <= claims["exp"] - time.time() <= 3600
    assert http.put(key_url("cli-1", "k"), json={"value": 1}, headers=_h(out)).status_code == 200
    ro = subprocess.run(
        [sys.executable, "-m", "botwire_server", "token", "create", "--ns", "cli-*", "--read-only"],
        capture_output=True,
        text=True,
        check=True,
        env={"BOTWIRE_TOKEN_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert jwt.decode(ro, SECRET, algorithms=["HS256"])["perm"] == "read"
    assert http.put(key_url("cli-1", "k"), json={"value": 2}, headers=_h(ro)).status_code == 403
    adm = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "token",
            "create",
            "--ns",
            "a",
            "--ns",
            "b",
            "--admin",
            "--expires",
            "never",
            "--secret",
            SECRET,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(adm, SECRET, algorithms=["HS256"])
    assert claims["perm"] == "admin"
    assert claims["ns"] == ["a", "b"]
    assert "exp" not in claims


def test_cli_token_create_without_secret_fails() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "botwire_server", "token", "create", "--ns", "x"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 2
    assert "secret" in r.stderr
