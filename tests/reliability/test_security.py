"""Security evidence: the token x namespace x operation matrix on a real server, the refusal to
serve anonymously off loopback, and tokens kept out of the log.

(``tests/server/test_auth.py`` checks each rule once; this walks every combination.)"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from reliability.helpers import Figures
from support.server import ServerProcess, free_port, running_server

from botwire._wire import key_path

SECRET = "reliability-secret-0123456789abcdef0123456789"
NAMESPACES = ["team-a", "team-b", "team", "TEAM-a", "other", "team-a:x"]


def _token(
    ns: list[str], perm: str = "write", exp: float | None = 3600, secret: str = SECRET
) -> str:
    claims: dict[str, Any] = {"ns": ns, "perm": perm}
    if exp is not None:
        claims["exp"] = int(time.time() + exp)
    return jwt.encode(claims, secret, algorithm="HS256")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(ns: list[str]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'ns': ns, 'perm': 'admin'})}."


def _tampered(ns: list[str]) -> str:
    """A valid read-only token whose payload was rewritten to admin over '*'."""
    head, _, sig = _token(ns, "read").split(".")
    return f"{head}.{_b64({'ns': ['*'], 'perm': 'admin', 'exp': int(time.time()) + 3600})}.{sig}"


# name -> (token, patterns it legitimately covers, may write)
TOKENS: dict[str, tuple[str, list[str], bool]] = {
    "read team-*": (_token(["team-*"], "read"), ["team-*"], False),
    "write team-*": (_token(["team-*"], "write"), ["team-*"], True),
    "admin team-*": (_token(["team-*"], "admin"), ["team-*"], True),
    "write team-a": (_token(["team-a"], "write"), ["team-a"], True),
    "write * read-only": (_token(["*"], "read"), ["*"], False),
    "write other+team-b": (_token(["other", "team-b"]), ["other", "team-b"], True),
    "expired": (_token(["*"], "admin", exp=-60), [], False),
    "wrong secret": (_token(["*"], "admin", secret="x" * 40), [], False),
    "alg none": (_alg_none(["*"]), [], False),
    "tampered": (_tampered(["team-*"]), [], False),
    "garbage": ("not-a-jwt", [], False),
}


def _ops(ns: str) -> list[tuple[str, bool, Callable[[httpx.Client, dict[str, str]], int]]]:
    """(name, is a write, call) for every route that touches a namespace."""
    k = key_path(ns, "k")
    return [
        ("get", False, lambda c, h: c.get(k, headers=h).status_code),
        ("list", False, lambda c, h: c.get(f"/v1/namespaces/{ns}/keys", headers=h).status_code),
        ("usage", False, lambda c, h: c.get(f"/v1/namespaces/{ns}", headers=h).status_code),
        ("compat get", False, lambda c, h: c.get(f"/memory/{ns}/k", headers=h).status_code),
        ("compat list", False, lambda c, h: c.get(f"/memory/{ns}", headers=h).status_code),
        ("put", True, lambda c, h: c.put(k, json={"value": 1}, headers=h).status_code),
        (
            "append",
            True,
            lambda c, h: c.patch(key_path(ns, "l"), json={"append": [1]}, headers=h).status_code,
        ),
        (
            "incr",
            True,
            lambda c, h: c.patch(key_path(ns, "n"), json={"incr": 1}, headers=h).status_code,
        ),
        (
            "batch",
            True,
            lambda c, h: (
                c.post(
                    f"/v1/namespaces/{ns}/batch",
                    json={"ops": [{"op": "set", "key": "b", "value": 1}]},
                    headers=h,
                ).status_code
            ),
        ),
        ("delete", True, lambda c, h: c.delete(k, headers=h).status_code),
        (
            "compat put",
            True,
            lambda c, h: c.put(f"/memory/{ns}/c", json={"value": "x"}, headers=h).status_code,
        ),
        ("compat delete", True, lambda c, h: c.delete(f"/memory/{ns}/c", headers=h).status_code),
        ("clear", True, lambda c, h: c.delete(f"/v1/namespaces/{ns}", headers=h).status_code),
    ]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        "--token-secret", SECRET, database=tmp_path_factory.mktemp("sec") / "s.db"
    ) as s:
        yield s


def _covered(patterns: list[str], ns: str) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(ns, p) for p in patterns)


def test_token_namespace_operation_matrix(auth_server: ServerProcess, record_property: Any) -> None:
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    admin = {"Authorization": f"Bearer {_token(['*'], 'admin')}"}
    with httpx.Client(base_url=auth_server.url, timeout=10) as c:
        for name, (token, patterns, may_write) in TOKENS.items():
            for ns in NAMESPACES:
                for op, is_write, call in _ops(ns):
                    # a key to read, delete or pop exists, so a refusal cannot hide as a 404
                    c.put(key_path(ns, "k"), json={"value": 0}, headers=admin)
                    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Token": token}):
                        before = (
                            c.get(f"/v1/namespaces/{ns}", headers=admin).json()
                            if is_write
                            else None
                        )
                        status = call(c, headers)
                        if is_write and status in (401, 403):  # a refused write left no trace
                            after = c.get(f"/v1/namespaces/{ns}", headers=admin).json()
                            if after != before:
                                wrong.append(f"{name} / {ns} / {op}: refused but applied")
                        if "Authorization" not in headers or not patterns:
                            expected = {401}
                        elif not _covered(patterns, ns) or (is_write and not may_write):
                            expected = {403}
                        else:
                            expected = {200, 404}
                        outcomes[str(status)] += 1
                        if status not in expected:
                            wrong.append(
                                f"{name} / {ns} / {op} / "
                                f"{'header' if 'Authorization' in headers else 'none'}"
                                f": {status}, expected {sorted(expected)}"
                            )
        # a token in the query string is never accepted, whatever its power
        tok = _token(["*"], "admin")
        for param in ("token", "access_token", "authorization", "jwt"):
            status = c.get(key_path("team-a", "k"), params={param: tok}).status_code
            outcomes[str(status)] += 1
            if status != 401:
                wrong.append(f"query {param}: {status}")
    attempted = sum(outcomes.values())
    Figures(
        "security/token-matrix",
        attempted=attempted,
        acknowledged=attempted - len(wrong),
        extra={
            "statuses": dict(outcomes),
            "violations": len(wrong),
            "tokens": len(TOKENS),
            "namespaces": len(NAMESPACES),
        },
    ).record(record_property)
    assert not wrong, "\n".join(wrong[:50])


def test_tokens_never_appear_in_the_log(tmp_path: Any) -> None:
    with running_server("--token-secret", SECRET, database=tmp_path / "log.db") as srv:
        tokens = [_token(["log-*"], p) for p in ("read", "write", "admin")]
        bad = [
            _token(["*"], exp=-5),
            _alg_none(["*"]),
            _tampered(["log-*"]),
            tokens[0][:-3] + "abc",
        ]
        with httpx.Client(base_url=srv.url) as c:
            for t in tokens + bad:
                for h in (
                    {"Authorization": f"Bearer {t}"},
                    {"Authorization": t},
                    {"authorization": f"bearer {t}"},
                ):
                    c.get(key_path("log-1", "k"), headers=h)
                    c.put(key_path("log-1", "k"), json={"value": 1}, headers=h)
                    c.put(key_path("nope", "k"), json={"value": 1}, headers=h)
                c.get(key_path("log-1", "k"), params={"access_token": t})
        log = srv.log()
    assert "log-1" in log  # the requests were logged...
    for t in tokens + bad:  # ...but no token and no signature (even a query-string one)
        assert t not in log
        sig = t.split(".")[2]
        assert not sig or sig not in log, t
    assert SECRET not in log


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "127.1", "10.0.0.1", "example.com"])
def test_refuses_non_loopback_bind_without_auth(host: str) -> None:
    """The check runs before anything binds; the database path cannot be opened either, so a
    missing check would end in 'cannot open the database', never in serving."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "botwire_server",
            "--host",
            host,
            "--port",
            str(free_port()),
            "--database",
            "/proc/botwire-nonexistent/x.db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert done.returncode != 0
    assert "refusing to serve" in done.stderr and "--token-secret" in done.stderr, done.stderr


def test_loopback_and_auth_binds_are_allowed() -> None:
    """Same check, the accepting side (still loopback only)."""
    from botwire_server.settings import Settings

    Settings(host="127.0.0.1").check_bind()
    Settings(host="::1").check_bind()
    Settings(host="localhost").check_bind()
    Settings(host="0.0.0.0", token_secret=SECRET).check_bind()
    Settings(host="0.0.0.0", allow_anonymous=True).check_bind()
