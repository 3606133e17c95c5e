"""The store itself: the six required methods, and each optional capability of
``botwire.store`` either honoured or reported *not applicable* with what the server does
without it (the declared default)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .._codec import decode
from .._errors import InvalidArgument
from .._memory import Memory
from .._types import Op
from ..store import OPTIONAL, Store, capabilities
from ._backend import Backend
from ._base import Cases

__all__ = ["ProtocolCases", "declared_default"]

REQUIRED = ("get", "batch", "list_keys", "clear", "usage", "close")


def declared_default(name: str) -> str:
    """What the server does without capability ``name``: its protocol's "Default:" line."""
    doc = " ".join((OPTIONAL[name].__doc__ or "").split())
    return doc.partition("Default: ")[2] or "(no default declared)"


class ProtocolCases(Cases):
    """The store's own contract: required methods fail when missing; optional capabilities are
    checked when offered and reported not applicable, with the declared default, when not."""

    @pytest.fixture
    def store(self, backend: Backend) -> Store:
        if backend.store is None:
            pytest.skip(f"not applicable: {backend.name}'s store is behind a server")
        return backend.store

    def test_store_has_the_required_methods(self, store: Store) -> None:
        missing = [m for m in REQUIRED if not callable(getattr(store, m, None))]
        assert not missing, (
            f"{type(store).__name__} lacks {', '.join(missing)}: a botwire store needs all of "
            f"{', '.join(REQUIRED)} (botwire.store.Store)"
        )
        assert isinstance(store, Store)

    @pytest.mark.parametrize("name", sorted(OPTIONAL))
    def test_optional_capability(
        self, store: Store, backend: Backend, mem: Memory, name: str
    ) -> None:
        if name not in capabilities(store):
            pytest.skip(
                f"not applicable by design: {type(store).__name__} does not offer {name} "
                f"({OPTIONAL[name].__name__}); without it the server uses: "
                f"{declared_default(name)}"
            )
        getattr(self, f"_check_{name}")(store, backend, mem)

    # -- one check per capability: what the server relies on when it uses it -----------------

    def _check_get_json(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set("k", {"a": [1, "é", None]}, ttl=100)
        mem.append("l", 1, 2, 3)
        ns = mem.namespace
        for key, tail in (("k", None), ("l", None), ("l", 2)):
            found, entry = store.get_json(ns, key, tail=tail), store.get(ns, key, tail=tail)
            assert found is not None and entry is not None
            text, *meta = found
            assert decode(text) == entry.value, f"get_json({key!r}, tail={tail}): {text}"
            assert tuple(meta) == (
                entry.version,
                entry.created_at,
                entry.updated_at,
                entry.expires_at,
            )
        assert store.get_json(ns, "absent") is None

    def _check_read_batch_json(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set_many({"a": 1, "b": {"x": [None]}})
        ops = [Op("get", "a"), Op("get", "absent"), Op("get", "b")]
        texts = store.read_batch_json(mem.namespace, ops)
        assert [decode(t) for t in texts] == store.batch(mem.namespace, ops)

    def _check_recent_keys(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set("a", 1)
        mem.set("b", "xx")
        backend.advance(1)
        mem.set("a", 2)
        recent = store.recent_keys(mem.namespace, 10)
        assert [r[0] for r in recent] == ["a", "b"], recent
        listed = {k.key: k.bytes for k in store.list_keys(mem.namespace).keys}
        assert {r[0]: r[1] for r in recent} == listed
        assert len(store.recent_keys(mem.namespace, 1)) == 1

    def _check_list_namespaces(self, store: Any, backend: Backend, mem: Memory) -> None:
        ns = mem.namespace
        mem.set("k", "x" * 100)
        other = backend.memory(ns + "-b")
        other.set_many({"a": 1, "b": 2})
        backend.memory(ns + "-c").set("gone", 1)
        backend.memory(ns + "-c").clear()  # no keys left: not listed
        rows = store.list_namespaces(ns)
        assert [(r[0], r[1]) for r in rows] == [(ns, 1), (ns + "-b", 2)], rows
        assert rows[0][2] >= 100, f"bytes of {ns!r}: {rows[0]}"
        assert [r[0] for r in store.list_namespaces(ns, ns)] == [ns + "-b"]  # after a cursor
        assert [r[0] for r in store.list_namespaces(ns, None, 1)] == [ns]
        assert store.list_namespaces(ns + "-b-") == []

    def _check_stored_bytes(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set("k", "x" * 1000)
        assert store.stored_bytes(mem.namespace, ["k"]) >= 1000
        assert store.stored_bytes(mem.namespace, ["absent"]) >= 0

    def _check_ping(self, store: Any, backend: Backend, mem: Memory) -> None:
        assert store.ping() is None

    def _check_purge_expired(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set("short", 1, ttl=5)
        mem.set("kept", 2)
        backend.advance(6)
        assert store.purge_expired() >= 1
        assert mem.keys() == ["kept"] and mem.usage().keys == 1

    def _check_needs_sweep(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.append("l", *range(50), max_len=10)
        assert isinstance(store.needs_sweep, bool)
        assert store.sweep() >= 0 and store.needs_sweep is False
        assert mem.get("l") == list(range(40, 50))

    def _check_batch_group(self, store: Any, backend: Backend, mem: Memory) -> None:
        """One caller's error undoes its own changes only; all others commit, in order."""
        ns = mem.namespace
        mem.set("k", 0)
        out = store.batch_group(
            [
                (ns, [Op("set", "a", value="1")], True, None),
                (
                    ns,
                    [Op("set", "b", value="2"), Op("set", "k", value="3", if_version=-5)],
                    True,
                    None,
                ),
                (ns, [Op("incr", "c")], True, None),
            ]
        )
        assert isinstance(out[1], Exception) and not isinstance(out[0], Exception), out
        assert out[0][0]["version"] < out[2][0]["version"], out
        assert mem.get_many(["a", "b", "c", "k"]) == {"a": 1, "c": 1, "k": 0}

    def _check_async_reader(self, store: Any, backend: Backend, mem: Memory) -> None:
        mem.set("k", {"v": 1})
        reader = store.async_reader()

        async def read() -> Any:
            await reader.open()
            try:
                return await reader.get(mem.namespace, "k")
            finally:
                await reader.close()

        entry = asyncio.run(read())
        assert entry is not None and entry.value == {"v": 1}

    def _check_get_policy(self, store: Any, backend: Backend, mem: Memory) -> None:
        ns = mem.namespace
        policy = store.set_policy(ns, {"default_ttl": 10.0, "max_list_len": 3})
        assert (policy.default_ttl, policy.max_list_len) == (10.0, 3), policy
        assert store.get_policy(ns) == policy and mem.usage().policy == policy
        mem.set("k", 1)
        mem.append("l", *range(5), max_len=10)  # a larger max_len is lowered to the policy's
        entry = mem.entry("k")
        assert entry is not None and entry.expires_at is not None
        assert mem.get("l") == [2, 3, 4]
        mem.set("explicit", 1, ttl=100)
        # botwire's own keys (queues, leases: ".botwire/") set their lives themselves
        mem.set(".botwire/queue/q/i/1", {"item": 1})
        mem.incr(".botwire/queue/q/i/1.n")
        backend.advance(11)
        assert mem.keys() == [".botwire/queue/q/i/1", ".botwire/queue/q/i/1.n", "explicit"]
        assert store.set_policy(ns, {"default_ttl": None, "max_list_len": None}).overrides == ()

    def _check_changes(self, store: Any, backend: Backend, mem: Memory) -> None:
        """The change feed ``watch`` relies on: latest state per key in version order,
        tombstones for deletes, the resume point, prefixes, and a wait that ends."""
        ns = mem.namespace
        start = mem.set("other", 0)
        mem.set("job/a", 1)
        mem.set("job/a", 2)  # coalesced: only the latest state is reported
        mem.set_many({"job/b": 1, "job/c": 1})  # one version for both
        mem.delete("job/c")
        found = store.changes(ns, prefix="job/", after=start)
        got = [(e.key, e.value, e.deleted) for e in found.entries]
        assert got == [("job/a", 2, False), ("job/b", 1, False), ("job/c", None, True)], got
        versions = [e.version for e in found.entries]
        assert versions == sorted(versions) and found.version >= versions[-1]
        assert not found.more
        assert store.changes(ns, prefix="job/", after=found.version).entries == []
        now = store.changes(ns)  # after=None: the live entries, no tombstones
        assert sorted(e.key for e in now.entries) == ["job/a", "job/b", "other"]
        assert now.version >= found.version
        page = store.changes(ns, after=start, limit=1)
        assert page.more and page.entries and page.version == page.entries[-1].version
        mem.set("job/a", 3)
        assert [e.value for e in mem.watch_prefix("job/", after=found.version).entries] == [3]
        quiet = store.changes(ns, after=store.changes(ns).version, wait=0.05)
        assert quiet.entries == []  # nothing changed: the wait ends empty

    def _check_wakeup(self, store: Any, backend: Backend, mem: Memory) -> None:
        """What ``AsyncMemory.watch`` sleeps on: a write to the namespace calls ``wake``; a
        cancelled registration is called no more; ``interval()`` bounds a sleep."""
        import threading
        import time

        ns = mem.namespace
        woken = threading.Event()
        calls: list[float] = []

        def wake() -> None:
            calls.append(time.monotonic())
            woken.set()

        handle = store.wakeup(ns, wake)
        try:
            assert 0 < handle.interval() <= 60, handle.interval()
            time.sleep(0.1)  # a poller or listener starting up sees the write below as new
            woken.clear()
            mem.set("woken", 1)
            assert woken.wait(10), f"{type(store).__name__}.wakeup: a write did not call wake"
        finally:
            handle.cancel()
        time.sleep(0.3)  # a call in flight at the cancel lands now
        calls.clear()
        mem.set("woken", 2)
        time.sleep(0.3)
        assert calls == [], "wake was called after its registration was cancelled"

    def _check_keys_clears(self, store: Any, backend: Backend, mem: Memory) -> None:
        ns = mem.namespace
        mem.set_many({"a": 1, "b": 2})
        assert store.clear(ns, idempotency_key="clear-1") == 2
        assert store.clear(ns, idempotency_key="clear-1") == 2  # the first answer, not 0
        try:  # the key of a clear, reused for another request
            store.batch(ns, [Op("incr", "n")], idempotency_key="clear-1")
        except InvalidArgument:
            pass
        else:
            raise AssertionError("a clear's idempotency key was accepted for a batch")
        mem.set("c", 3)
        assert store.clear(ns, idempotency_key="clear-2") == 1 and mem.keys() == []

    def _check_engine(self, store: Any, backend: Backend, mem: Memory) -> None:
        engine = store.engine
        for attr in ("max_append_items", "max_list_length", "max_list_bytes"):
            assert hasattr(engine, attr), f"{type(store).__name__}.engine has no {attr}"
