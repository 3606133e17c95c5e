"""A delete or clear whose answer is lost after the server applied it: the client's retry must
report what the call did, not what the retry found (``False`` / ``0``). Before the fix both
went without an ``Idempotency-Key``, so the retry ran again and reported its own answer.
``Memory`` and ``AsyncMemory`` alike, through a fault proxy in front of a real server."""

from __future__ import annotations

import socket
from typing import Any

from client_http.rawpeer import RawPeer, answer, header
from support.faultproxy import FaultProxy

from botwire import Memory


def test_a_delete_whose_answer_was_lost_still_reports_true(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    truth.set("k", "v")
    m = client(ns, url=proxy.url, timeout=5, retries=3)
    proxy.set_script(["drop_after"])  # applied by the server, its answer never arrives
    assert m.delete("k") is True
    assert proxy.counts["drop_after"] == 1 and truth.get("k") is None
    assert m.delete("k") is False  # a new call is a new call


def test_a_one_key_delete_many_keeps_the_callers_key(
    client: Any, server: Any, ns: str, truth: Memory
) -> None:
    """It goes on the DELETE route: the caller's key used to be dropped there, so a platform's
    repeat of the invocation answered 0."""
    truth.set("k", 1)
    m = client(ns, url=server.url)
    assert m.delete_many(["k"], idempotency_key="req-7:del") == 1
    assert m.delete_many(["k"], idempotency_key="req-7:del") == 1  # the first result
    assert m.delete_many(["k"], idempotency_key="req-8:del") == 0


def test_a_one_key_set_many_keeps_the_callers_key(
    client: Any, server: Any, ns: str, truth: Memory
) -> None:
    """A one-key set_many went out as a plain PUT, which records no key: a platform's repeat
    of the invocation wrote the value again, over what others wrote since."""
    m = client(ns, url=server.url)
    first = m.set_many({"k": "mine"}, idempotency_key="req-7:set")
    truth.set("k", "theirs")  # written after the first attempt
    assert m.set_many({"k": "mine"}, idempotency_key="req-7:set") == first  # the first result
    assert truth.get("k") == "theirs"  # applied once
    assert m.set_many({"k": "mine"}, idempotency_key="req-8:set") > first


def test_every_retry_of_a_clear_carries_the_same_idempotency_key(client: Any, ns: str) -> None:
    """The first attempt's connection closes unanswered (a lost answer); its retry must carry
    the key the first one had, so a server that records it can answer with the first count."""

    def serve(conn: socket.socket, index: int, head: bytes, rest: bytes) -> bool:
        if index == 1:
            return False  # closed without an answer
        conn.sendall(answer(200, b'{"deleted": 3}'))
        return True

    with RawPeer(serve) as peer:
        assert client(ns, url=peer.url, timeout=5, retries=3).clear() == 3
    keys = [header(head, "idempotency-key") for head in peer.heads]
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]


def test_a_clear_whose_answer_was_lost_still_reports_its_count(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    """The store keeps the clear's own answer under its key (the clear drops every other
    record of the namespace): the retry reports the 2 it cleared, not the 0 it would find."""
    truth.set_many({"a": 1, "b": 2})
    m = client(ns, url=proxy.url, timeout=5, retries=3)
    proxy.set_script(["drop_after"])
    assert m.clear() == 2
