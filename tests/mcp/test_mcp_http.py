"""Streamable HTTP (stateless) with botwire-token auth, against a real botwire-server.

Two botwire-mcp replicas share one botwire-server, like two Cloud Run instances behind a load
balancer: whatever one stored the other serves, and a bare JSON-RPC call (no initialize, no
session id) is answered by either. Tokens are the JWTs ``botwire-server token create`` mints.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from mcp_helpers import call, http_session, mcp_env, running_mcp_http, structured
from pydantic import AnyUrl
from support.server import running_server

from botwire import Memory
from botwire_server.auth import mint_token

SECRET = "mcp-test-secret-at-least-32-bytes-long"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def ns() -> str:
    return f"mcp-http-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def replicas(shared_server_url: str, ns: str) -> Iterator[tuple[str, str]]:
    """Two botwire-mcp HTTP processes requiring tokens, on the session's botwire-server."""
    env = mcp_env(shared_server_url, ns, BOTWIRE_TOKEN_SECRET=SECRET)
    with running_mcp_http(env) as (a, _), running_mcp_http(env) as (b, _):
        yield a, b


def _token(ns: str, *, read_only: bool = False, expires: int | None = None) -> str:
    return mint_token(SECRET, [ns], perm="read" if read_only else "write", expires_in=expires)


def _rpc(url: str, method: str, params: dict, token: str | None = None) -> httpx.Response:
    headers = dict(ACCEPT)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url, json=body, headers=headers, timeout=30)


@pytest.mark.asyncio
async def test_replicas_share_memory_and_need_no_session(
    replicas: tuple[str, str], ns: str, shared_server_url: str
) -> None:
    a, b = replicas
    token = _token(ns)
    async with http_session(a, token) as s:
        tools = {t.name for t in (await s.list_tools()).tools}
        assert {"memory_set", "read_graph", "add_observations"} <= tools
        await call(s, "memory_set", key="profile", value={"name": "Alice", "tags": ["x"]})
        await call(
            s,
            "create_entities",
            entities=[
                {"name": "Alice", "entityType": "person", "observations": ["from replica A"]}
            ],
        )
    async with http_session(b, token) as s:
        got = structured(await call(s, "memory_get", key="profile"))
        assert got["value"] == {"name": "Alice", "tags": ["x"]}
        graph = structured(await call(s, "read_graph"))
        assert graph["entities"][0]["observations"] == ["from replica A"]
        res = await s.read_resource(AnyUrl(f"memory://{ns}/profile"))
        assert "Alice" in res.contents[0].text
    # stateless: a lone tools/call, without initialize or Mcp-Session-Id, on either replica
    for url in (a, b):
        r = _rpc(url, "tools/call", {"name": "memory_get", "arguments": {"key": "profile"}}, token)
        assert r.status_code == 200, r.text
        assert "mcp-session-id" not in r.headers
        assert r.json()["result"]["structuredContent"]["value"]["name"] == "Alice"
    with Memory(ns, url=shared_server_url) as m:  # the same data, seen by a plain client
        assert m.get("profile") == {"name": "Alice", "tags": ["x"]}


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (None, "needs a token and the request carried none"),
        ("not-a-jwt", "invalid"),
        (mint_token("another-secret-also-32-bytes-long!!", ["*"]), "invalid"),
        ("EXPIRED", "expired"),
    ],
    ids=["none", "garbage", "other-secret", "expired"],
)
def test_http_refuses_calls_without_a_valid_token(
    replicas: tuple[str, str], ns: str, shared_server_url: str, token: str | None, problem: str
) -> None:
    if token == "EXPIRED":
        token = _token(ns, expires=-10)
    args = {"key": f"intruder-{problem}", "value": 1}
    r = _rpc(replicas[0], "tools/call", {"name": "memory_set", "arguments": args}, token)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    error = r.json()["error"]
    assert problem in error["message"] and "Authorization: Bearer" in error["message"]
    with Memory(ns, url=shared_server_url) as m:
        assert m.get(f"intruder-{problem}") is None  # nothing written


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"exp": "9999999999"}, "'exp' claim must be a whole number"),
        ({"aud": "anyone"}, "claims this server does not know (aud)"),
        ({"role": "root"}, "claims this server does not know (role)"),
        ({"ns": []}, "'ns' claim is not a list of namespace patterns"),
        ({"nbf": 4102444800}, "not valid yet"),
    ],
    ids=["string-exp", "aud", "unknown-claim", "empty-ns", "future-nbf"],
)
def test_http_refuses_the_signed_tokens_botwire_server_refuses(
    replicas: tuple[str, str], ns: str, shared_server_url: str, extra: dict, problem: str
) -> None:
    # One definition of the token rules: a signed token botwire-server would refuse (401) is
    # refused here too, with the same reason, and writes nothing.
    import jwt

    claims = {"ns": [ns], "perm": "write", "iat": int(time.time()), **extra}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    args = {"key": f"odd-token-{len(problem)}", "value": 1}
    r = _rpc(replicas[1], "tools/call", {"name": "memory_set", "arguments": args}, token)
    assert r.status_code == 401, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("botwire-mcp: ") and problem in message
    assert "botwire-server token create --ns" in message
    with Memory(ns, url=shared_server_url) as m:
        assert m.get(args["key"]) is None  # nothing written


@pytest.mark.asyncio
async def test_no_token_fails_the_mcp_client_with_the_reason(replicas: tuple[str, str]) -> None:
    with pytest.raises(BaseException) as info:  # noqa: PT011 -- an ExceptionGroup from anyio
        async with http_session(replicas[0]) as s:
            await s.list_tools()
    assert "401" in repr(info.value) or "Unauthorized" in repr(info.value)


@pytest.mark.asyncio
async def test_a_token_for_another_namespace_reads_and_writes_nothing(
    replicas: tuple[str, str], ns: str, shared_server_url: str
) -> None:
    with Memory(ns, url=shared_server_url) as m:
        m.set("secret", "do not leak")
    wrong = mint_token(SECRET, ["tenant-other-*"], perm="write")
    async with http_session(replicas[1], wrong) as s:
        for tool, args in [
            ("memory_get", {"key": "secret"}),
            ("memory_set", {"key": "planted", "value": 1}),
            (
                "create_entities",
                {"entities": [{"name": "Planted", "entityType": "x", "observations": []}]},
            ),
            ("read_graph", {}),
        ]:
            result = await s.call_tool(tool, args)
            assert result.isError, tool
            text = result.content[0].text
            assert "does not cover namespace" in text and ns in text and "tenant-other-*" in text
            assert "do not leak" not in text
        with pytest.raises(Exception, match="does not cover namespace"):
            await s.read_resource(AnyUrl(f"memory://{ns}/secret"))
    with Memory(ns, url=shared_server_url) as m:
        assert m.get("planted") is None and m.get("graph/e/Planted") is None


@pytest.mark.asyncio
async def test_a_read_only_token_reads_but_writes_nothing(
    replicas: tuple[str, str], ns: str, shared_server_url: str
) -> None:
    with Memory(ns, url=shared_server_url) as m:
        m.set("shared-note", "readable")
    async with http_session(replicas[0], _token(ns, read_only=True)) as s:
        got = structured(await call(s, "memory_get", key="shared-note"))
        assert got["value"] == "readable"
        for tool, args in [
            ("memory_set", {"key": "ro-write", "value": 1}),
            ("memory_append", {"key": "ro-list", "items": [1]}),
            ("memory_delete", {"key": "shared-note"}),
            ("add_observations", {"observations": [{"entityName": "Alice", "contents": ["ro"]}]}),
        ]:
            result = await s.call_tool(tool, args)
            assert result.isError, tool
            assert "read-only" in result.content[0].text and ns in result.content[0].text
    with Memory(ns, url=shared_server_url) as m:
        assert m.get("ro-write") is None and m.get("ro-list") is None
        assert m.get("shared-note") == "readable"
        alice = m.get("graph/e/Alice")
        assert alice is None or "ro" not in alice["observations"]


@pytest.mark.asyncio
async def test_four_clients_add_25_observations_each_to_one_entity(
    replicas: tuple[str, str], ns: str
) -> None:
    """Concurrent writers lose nothing: 4 clients spread over the two replicas (two processes)
    each add 25 observations to one entity; all 100 are kept. (A read-modify-write version of
    add_observations kept 84 of 100 here.)"""
    clients, calls = 4, 25
    token = _token(ns)
    async with http_session(replicas[0], token) as s:
        await call(
            s,
            "create_entities",
            entities=[{"name": "Shared", "entityType": "topic", "observations": []}],
        )

    async def client(i: int) -> list[str]:
        added = []
        async with http_session(replicas[i % 2], token) as s:
            for j in range(calls):
                out = structured(
                    await call(
                        s,
                        "add_observations",
                        observations=[
                            {"entityName": "Shared", "contents": [f"client {i} note {j}"]}
                        ],
                    )
                )
                added += out["results"][0]["addedObservations"]
        return added

    start = time.perf_counter()
    added = await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    print(
        f"FIGURE mcp add_observations {clients}x{calls} over 2 replicas on botwire-server: "
        f"{elapsed:.2f} s, {clients * calls / elapsed:.0f} calls/s"
    )
    assert all(len(a) == calls for a in added)  # every call reported its observation
    async with http_session(replicas[1], token) as s:
        graph = structured(await call(s, "open_nodes", names=["Shared"]))
    observations = graph["entities"][0]["observations"]
    expected = {f"client {i} note {j}" for i in range(clients) for j in range(calls)}
    assert len(observations) == clients * calls and set(observations) == expected


def test_refuses_an_anonymous_non_loopback_bind(tmp_path) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: even a broken check could not listen.
    env = mcp_env(f"sqlite:///{tmp_path}/m.db", "anything")
    proc = subprocess.run(
        [sys.executable, "-m", "botwire_mcp", "--transport", "http", "--host", "192.0.2.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "refusing to serve HTTP on '192.0.2.1' without auth" in proc.stderr
    assert "--token-secret" in proc.stderr and "--allow-anonymous" in proc.stderr


def test_a_loopback_server_rejects_foreign_host_headers(
    replicas: tuple[str, str], ns: str, shared_server_url: str
) -> None:
    """DNS rebinding: a web page must not reach a server on 127.0.0.1 through a name it
    controls. (The replicas bind loopback; the Host check is the same with or without tokens.)"""
    token = _token(ns)
    ok = _rpc(
        replicas[0],
        "tools/call",
        {"name": "memory_set", "arguments": {"key": "host-ok", "value": 1}},
        token,
    )
    assert ok.status_code == 200 and not ok.json()["result"]["isError"]
    evil = httpx.post(
        replicas[0],
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "memory_set", "arguments": {"key": "host-evil", "value": 1}},
        },
        headers={
            **ACCEPT,
            "Authorization": f"Bearer {token}",
            "Host": "evil.example:80",
            "Origin": "http://evil.example",
        },
        timeout=30,
    )
    assert evil.status_code in (403, 421)
    with Memory(ns, url=shared_server_url) as m:
        assert m.get("host-ok") == 1 and m.get("host-evil") is None


def test_get_is_refused_instead_of_an_endless_stream(replicas: tuple[str, str], ns: str) -> None:
    """A stateless server has no server-initiated stream: GET is answered 405 at once (the MCP
    spec's answer), where it used to hold an empty event stream open forever."""
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {_token(ns)}"}
    start = time.monotonic()
    with httpx.stream("GET", replicas[0], headers=headers, timeout=10) as r:
        body = r.read()
    assert time.monotonic() - start < 5
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert b"send MCP requests with POST" in body
    # POST (what every client uses) is unaffected
    assert _rpc(replicas[0], "tools/list", {}, _token(ns)).status_code == 200


OPERATOR_SECRET = "operator-secret-of-the-botwire-server-32b"


@pytest.fixture(scope="module")
def guarded_backend() -> Iterator[str]:
    """A botwire-server that requires tokens signed with OPERATOR_SECRET."""
    with running_server("--token-secret", OPERATOR_SECRET) as backend:
        yield backend.url


@pytest.mark.parametrize(
    ("operator_token", "reason"),
    [
        (mint_token(OPERATOR_SECRET, ["team"], expires_in=-5), "missing, invalid or expired"),
        (mint_token(OPERATOR_SECRET, ["elsewhere-*"]), "does not cover namespace 'team'"),
    ],
    ids=["expired", "out-of-scope"],
)
@pytest.mark.asyncio
async def test_a_refused_operator_token_is_blamed_on_the_operator(
    guarded_backend: str, operator_token: str, reason: str
) -> None:
    """The caller's token is fine; botwire-mcp's own BOTWIRE_TOKEN is not. The caller must not be
    told to fix its Authorization header, nor see the operator token's scope."""
    env = mcp_env(
        guarded_backend, "team", BOTWIRE_TOKEN_SECRET=SECRET, BOTWIRE_TOKEN=operator_token
    )
    with running_mcp_http(env) as (url, _):
        async with http_session(url, _token("team")) as s:
            result = await s.call_tool("memory_set", {"key": "k", "value": 1})
    assert result.isError
    text = result.content[0].text
    assert f"the botwire-server at {guarded_backend} refused botwire-mcp's own token" in text
    assert reason in text and "the operator of this MCP server must" in text
    assert "Authorization" not in text and "elsewhere" not in text and operator_token not in text
