"""The ``/changes`` route against real server processes (issue 18): bounded waiters (a hostile
tenant opening many long-polls), a waiter freed when its client disconnects, 410 ``compacted``
across HTTP, the hold bound, bad query parameters, and the OpenAPI description."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.polls import hold_poll
from support.server import ServerProcess, running_server

from botwire import Compacted, Memory


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(
        "--max-watchers",
        "3",
        "--max-watchers-per-namespace",
        "2",
        "--watch-hold",
        "30",
        database=tmp_path / "w.db",
    ) as s:
        yield s


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(database=tmp_path_factory.mktemp("plain") / "p.db") as s:
        yield s


def _poll(server: ServerProcess, ns: str, wait: float = 0.2) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/namespaces/{ns}/changes", params={"after": 0, "wait": wait}, timeout=10
    )


def test_waiters_are_bounded_per_namespace_and_per_server(server: ServerProcess) -> None:
    held = [hold_poll(server, "tenant-a"), hold_poll(server, "tenant-a")]
    try:
        refused = _poll(server, "tenant-a")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["quota"] == "max_watchers_per_namespace" and "tenant-a" in error["message"]
        held.append(hold_poll(server, "tenant-b"))
        refused = _poll(server, "tenant-c")
        assert refused.status_code == 429
        assert refused.json()["error"]["quota"] == "max_watchers"
        # a read without wait is never refused: only holding is bounded
        assert httpx.get(f"{server.url}/v1/namespaces/tenant-c/changes").status_code == 200
        assert "botwire_watchers 3.0" in httpx.get(f"{server.url}/metrics").text
    finally:
        for sock in held:
            sock.close()


def test_a_disconnected_waiter_is_freed(server: ServerProcess) -> None:
    for _ in range(3):  # more than the namespace's limit of 2, one pair at a time
        held = [hold_poll(server, "tenant-a"), hold_poll(server, "tenant-a")]
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5  # the hold is 30 s: only a freed slot answers in time
        while True:
            answer = _poll(server, "tenant-a", wait=0)  # no wait: never refused
            assert answer.status_code == 200
            probe = _poll(server, "tenant-a", wait=0.05)
            if probe.status_code == 200:
                break
            assert time.monotonic() < deadline, "the disconnected waiters were never freed"
            time.sleep(0.05)


def test_a_write_answers_a_held_poll_and_the_hold_is_bounded(tmp_path: Path) -> None:
    with running_server("--watch-hold", "0.5", database=tmp_path / "h.db") as server:
        started = time.monotonic()
        answer = _poll(server, "ns", wait=30)  # asks for 30 s, the server holds 0.5 s
        held = time.monotonic() - started
        assert answer.status_code == 200 and answer.json() == {
            "changes": [],
            "version": 0,
            "more": False,
        }
        assert held < 10
        print(f"FIGURE /changes held {held * 1000:.0f} ms for --watch-hold 0.5 (wait=30 asked)")
        with Memory("ns", url=server.url) as m:
            v = m.set("k", 1)
            started = time.monotonic()
            assert m.watch("k", after=v, timeout=1.6) is None  # several holds, then None
            assert time.monotonic() - started >= 1.5


def test_compacted_over_http(tmp_path: Path) -> None:
    with (
        running_server(
            "--tombstone-retention",
            "0.2",
            env={"BOTWIRE_HOUSEKEEPING_SECONDS": "0.2"},
            database=tmp_path / "c.db",
        ) as server,
        Memory("gone", url=server.url) as m,
    ):
        v = m.set("a", 1)
        m.delete("a")
        deadline = time.monotonic() + 20
        while True:
            answer = httpx.get(
                f"{server.url}/v1/namespaces/gone/changes", params={"after": v}, timeout=10
            )
            if answer.status_code == 410:
                break
            assert answer.status_code == 200
            assert time.monotonic() < deadline, "housekeeping never pruned the tombstone"
            time.sleep(0.1)
        assert answer.json()["error"]["code"] == "compacted"
        with pytest.raises(Compacted) as caught:
            m.watch_prefix(after=v, timeout=0)
        assert caught.value.namespace == "gone" and "after=None" in str(caught.value)
        assert m.watch_prefix().entries == []


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("wait=soon", "wait"),
        ("wait=-1", "wait"),
        ("wait=nan", "wait"),
        ("after=-3", "after"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("prefix=a%00b", "prefix"),
    ],
)
def test_bad_query_parameters_are_400(plain: ServerProcess, query: str, word: str) -> None:
    answer = httpx.get(f"{plain.url}/v1/namespaces/ns/changes?{query}")
    assert answer.status_code == 400, answer.text
    assert word in answer.json()["error"]["message"]


def test_openapi_describes_the_route(plain: ServerProcess) -> None:
    spec = httpx.get(f"{plain.url}/openapi.json").json()
    route = spec["paths"]["/v1/namespaces/{ns}/changes"]["get"]
    assert {"200", "410", "429"} <= set(route["responses"])
    names = {p["name"] for p in route["parameters"]}
    assert {"ns", "prefix", "after", "limit", "wait"} <= names
    schema = json.dumps(spec["components"]["schemas"]["ChangesOut"])
    assert "more" in schema and "version" in schema


def test_async_memory_watches_over_http(plain: ServerProcess) -> None:
    import asyncio

    from botwire import AsyncMemory

    async def run() -> None:
        async with (
            AsyncMemory("async-watch", url=plain.url) as waiter,
            AsyncMemory("async-watch", url=plain.url) as writer,
        ):
            start = await writer.set("k", 0)
            task = asyncio.ensure_future(waiter.watch("k", after=start, timeout=10))
            await asyncio.sleep(0.3)
            version = await writer.set("k", 1)
            entry = await task
            assert entry is not None and entry.value == 1 and entry.version == version
            await writer.delete("k")
            found = await waiter.watch_prefix("", after=version, timeout=10)
            assert [(e.key, e.deleted) for e in found.entries] == [("k", True)]
            assert await waiter.watch("k", after=found.version, timeout=0.3) is None

    asyncio.run(run())


def test_a_token_watches_only_its_namespaces(tmp_path: Path) -> None:
    import jwt

    secret = "watch-secret-0123456789abcdef0123456789abcdef"

    def token(ns: str, perm: str) -> str:
        claims = {"ns": [ns], "perm": perm, "exp": int(time.time()) + 600}
        return jwt.encode(claims, secret, algorithm="HS256")

    with running_server("--token-secret", secret, database=tmp_path / "t.db") as server:
        with Memory("tenant-b", url=server.url, token=token("tenant-b", "write")) as b:
            v = b.set("secret", "b's")
        reader = {"Authorization": f"Bearer {token('tenant-a', 'read')}"}
        url = f"{server.url}/v1/namespaces"
        own = httpx.get(f"{url}/tenant-a/changes", params={"after": 0, "wait": 0.1}, headers=reader)
        assert own.status_code == 200  # read permission is enough to watch
        for params in ({"after": 0, "wait": 5}, {}):
            other = httpx.get(f"{url}/tenant-b/changes", params=params, headers=reader)
            assert other.status_code == 403 and "b's" not in other.text
        assert httpx.get(f"{url}/tenant-b/changes", params={"after": v - 1}).status_code == 401
