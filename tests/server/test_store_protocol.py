"""The Store protocol is the whole contract: every capability the server probes a store for is
declared in ``botwire/store/_protocol.py`` (``OPTIONAL``), and a store with only the six
required methods is served, each capability falling back to its declared default."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.server import serving_app

import botwire_server
from botwire import Entry, InvalidArgument, Memory, Unavailable, _watch
from botwire.backends import _threaded
from botwire.store import KeyPage, Op, SQLiteStore, Store, Usage
from botwire.store._protocol import MEMBERS, OPTIONAL, capabilities
from botwire_server import Settings, create_app
from botwire_server.storage import StoreRunner

SERVER = Path(botwire_server.__file__).parent
# A probe: getattr(store, "x"...), or the runner's supports("x") / call("x", ...).
PROBE = re.compile(r'getattr\((?:self\.)?store, "(\w+)"|supports\("(\w+)"\)|call\(\s*"(\w+)"')


def test_every_capability_the_server_probes_is_declared() -> None:
    # The server's storage and API, core's runner that the server's StoreRunner builds on, and the
    # watch helper that runner probes ``changes`` through.
    paths = [*SERVER.glob("storage/*.py"), *SERVER.glob("api/*.py")]
    paths += [Path(_threaded.__file__), Path(_watch.__file__)]
    names: set[str] = set()
    for path in paths:
        names |= {n for groups in PROBE.findall(path.read_text()) for n in groups if n}
    assert names, "the probe pattern found nothing: update this test with the server's code"
    assert names <= set(MEMBERS), f"probed but declared by no capability: {names - set(MEMBERS)}"
    probed = {MEMBERS[n] for n in names}
    assert probed == set(OPTIONAL), (
        f"the server probes {sorted(probed - set(OPTIONAL))} undeclared, and "
        f"{sorted(set(OPTIONAL) - probed)} are declared but never probed: keep "
        "botwire/store/_protocol.py OPTIONAL and botwire_server/storage/ in step"
    )


def test_the_embedded_store_declares_what_it_offers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        assert isinstance(store, Store)
        assert capabilities(store) == set(OPTIONAL) - {"async_reader"}
    finally:
        store.close()


class SixMethods:
    """A third party's store: the six methods of ``Store`` and nothing else (it keeps its data
    in a SQLiteStore, reached only through those six)."""

    def __init__(self, path: Path) -> None:
        self._inner = SQLiteStore(path)

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        return self._inner.get(namespace, key, tail=tail)

    def batch(self, namespace: str, ops: Sequence[Op], **options: Any) -> list[dict[str, Any]]:
        return self._inner.batch(namespace, ops, **options)  # atomic=, idempotency_key=

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        return self._inner.list_keys(namespace, prefix=prefix, cursor=cursor, limit=limit)

    def clear(self, namespace: str) -> int:
        return self._inner.clear(namespace)

    def usage(self, namespace: str) -> Usage:
        return self._inner.usage(namespace)

    def close(self) -> None:
        self._inner.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def six_method_server(tmp_path: Path) -> Iterator[str]:
    """A real server (uvicorn on loopback, in a thread) over a :class:`SixMethods` store."""
    store = SixMethods(tmp_path / "third-party.db")
    assert isinstance(store, Store) and capabilities(store) == frozenset()
    port = _free_port()
    app = create_app(Settings(host="127.0.0.1", port=port), store=store)
    with serving_app(app, port) as url:
        yield url


def test_a_store_of_six_methods_is_served_with_every_default(six_method_server: str) -> None:
    url = six_method_server
    with Memory("third-party", url=url, retries=0) as m:
        m.set("profile", {"name": "Ada"})  # get_json's default: get, encoded by the server
        assert m.get("profile") == {"name": "Ada"}
        assert m.append("log", 1, 2, 3) == 3 and m.tail("log", 2) == [2, 3]
        m.set_many({"a": 1, "b": [None]})
        assert m.get_many(["a", "b", "zz"]) == {"a": 1, "b": [None]}  # read_batch_json's
        assert m.list() == ["a", "b", "log", "profile"] and "a" in m and len(m) == 4
        m.incr("newest")
        with pytest.raises(InvalidArgument, match="SupportsPolicy"):  # get_policy's default
            m.set_policy(max_list_len=5)
        with pytest.raises(InvalidArgument, match="SupportsPolicy"):
            m.policy()
    ready = httpx.get(f"{url}/readyz", timeout=10)  # ping's default: a get
    assert ready.status_code == 200, ready.text
    listing = httpx.get(f"{url}/memory/third-party", timeout=10)  # recent_keys' default
    assert listing.status_code == 200, listing.text
    assert [k["key"] for k in listing.json()["keys"]][:1] == ["newest"]
    # list_namespaces' default: a clear 400 naming the capability and what to do instead
    names = httpx.get(f"{url}/v1/namespaces", timeout=10)
    assert names.status_code == 400, names.text
    message = names.json()["error"]["message"]
    assert "list_namespaces" in message and "SixMethods" in message, message
    assert "GET /v1/namespaces/{ns}" in message, message


def test_the_runner_falls_back_to_each_declared_default(tmp_path: Path) -> None:
    store = SixMethods(tmp_path / "r.db")

    async def main() -> None:
        runner = StoreRunner(store, inline=True)
        await runner.open()  # no async_reader: reads call the store
        try:
            assert runner.reader is None
            assert await runner.recent_keys("ns", 10) is None
            assert await runner.stored_bytes("ns", ["k"]) is None
            assert await runner.read_batch_json("ns", [Op("get", "k")]) is None
            assert await runner.housekeeping() == 0
            await runner.ping()
            assert await runner.get_json("ns", "k") is None
        finally:
            await runner.close()

    asyncio.run(main())


class Failing(SixMethods):
    """A store whose optional capabilities fail as a broken database would."""

    def recent_keys(self, namespace: str, limit: int) -> list[tuple[str, int, float]]:
        raise OSError(5, "Input/output error")

    def list_namespaces(
        self, prefix: str = "", after: str | None = None, limit: int = 500
    ) -> list[tuple[str, int, int]]:
        raise InvalidArgument(f"botwire: prefix {prefix!r} refused by the store.")


@pytest.mark.parametrize("inline", [True, False])
def test_a_forwarded_capability_fails_as_503_and_is_counted(tmp_path: Path, inline: bool) -> None:
    errors: list[BaseException] = []
    store = Failing(tmp_path / "f.db")

    async def main() -> None:
        runner = StoreRunner(store, inline=inline, on_error=errors.append)
        await runner.open()
        try:
            with pytest.raises(Unavailable, match="the store failed \\(OSError\\)") as caught:
                await runner.recent_keys("ns", 10)
            assert isinstance(caught.value.__cause__, OSError)  # the traceback is kept
            with pytest.raises(Unavailable):
                await runner.call("recent_keys", "ns", 10)
            # a BotWireError is the store's answer to the client: passed on, not counted
            with pytest.raises(InvalidArgument, match="refused by the store"):
                await runner.call("list_namespaces", "x")
        finally:
            await runner.close()

    asyncio.run(main())
    assert [type(e) for e in errors] == [OSError, OSError]


def test_the_namespace_listing_is_a_declared_capability_of_both_sql_stores(
    tmp_path: Path,
) -> None:
    # "_" and "%" are LIKE wildcards: the prefix filter is a range, so they match themselves
    store = SQLiteStore(tmp_path / "n.db")
    try:
        for ns in ("a_1", "ab1", "a.", "a", "b"):
            store.batch(ns, [Op("set", "k", value="1")])
        assert capabilities(store) >= {"list_namespaces"}
        assert [r[0] for r in store.list_namespaces("a_")] == ["a_1"]
        assert store.list_namespaces("a%") == []
        assert [r[0] for r in store.list_namespaces("a")] == ["a", "a.", "a_1", "ab1"]
        assert [r[0] for r in store.list_namespaces("", "a_1")] == ["ab1", "b"]
    finally:
        store.close()
