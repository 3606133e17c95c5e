"""Caller idempotency keys: a platform's retry of a whole invocation applies each write once.

Lambda async retries and SQS redelivery run the handler again with the same request id; with
``idempotency_key=f"{context.aws_request_id}:..."`` every write of the first run is answered
from its record instead of applied again. Run with ``Memory`` and ``AsyncMemory`` against a
real server and against the embedded SQLite store (which honours the keys the same way).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.proc import run_python

from botwire import InvalidArgument, Memory


@pytest.fixture(params=["http", "embedded"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "http":
        yield request.getfixturevalue("server").url
    else:
        yield f"sqlite:///{tmp_path}/embedded.db"


def test_each_write_applies_once_when_the_call_is_repeated(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    for _ in range(2):  # the invocation and the platform's retry of it
        assert m.append("h", "a", "b", idempotency_key="req-1:h") == 2
        assert m.incr("n", 5, idempotency_key="req-1:n") == 5
        assert m.pop("h", idempotency_key="req-1:pop") == "b"
        assert m.set_many({"x": 1, "y": 2}, idempotency_key="req-1:xy") > 0
        tx = m.atomic()
        tx.append("h", "c").incr("n")
        assert tx.commit(idempotency_key="req-1:tx") == [2, 6]
        assert m.delete_many(["x", "y", "zz"], idempotency_key="req-1:del") == 2
    check = client(ns, url=url)
    assert check.get("h") == ["a", "c"]
    assert check.get("n") == 6
    assert check.get_many(["x", "y"]) == {}
    # A new key is a new call.
    assert m.append("h", "d", idempotency_key="req-2:h") == 3


def test_atomic_builder_takes_the_key_too(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    for _ in range(2):
        tx = m.atomic(idempotency_key="req-9:tx")
        tx.set("a", 1).incr("count")
        tx.commit()
    assert client(ns, url=url).get("count") == 1


def test_reusing_a_key_for_a_different_call_is_refused(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    m.append("h", "a", idempotency_key="req-3")
    with pytest.raises(InvalidArgument) as info:
        m.incr("n", idempotency_key="req-3")
    assert "req-3" in str(info.value) and "different request" in str(info.value)
    assert client(ns, url=url).get("n") is None


@pytest.mark.parametrize("bad", ["", "a\r\nX-Evil: 1", "é", "x" * 201, 42])
def test_a_bad_key_is_refused_before_any_io(client: Any, url: str, ns: str, bad: Any) -> None:
    m = client(ns, url=url)
    with pytest.raises(InvalidArgument) as info:
        m.append("h", 1, idempotency_key=bad)
    assert ns in str(info.value) and "aws_request_id" in str(info.value)
    assert client(ns, url=url).get("h") is None


def test_the_caller_key_also_guards_the_clients_own_retries(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    """The answer is lost after the server applied the write; the retry (and a later repeat of
    the whole call) is answered from the record."""
    m = client(ns, url=proxy.url)
    proxy.set_script(["drop_after"])
    assert m.append("h", "once", idempotency_key="req-4:h") == 1
    assert m.append("h", "once", idempotency_key="req-4:h") == 1
    assert truth.get("h") == ["once"]
    assert proxy.counts["drop_after"] == 1


HANDLER = """
import asyncio, json, sys
from botwire import AsyncMemory, Memory

class Context:  # what AWS passes; a retry of the event carries the same aws_request_id
    aws_request_id = "8f1c2d3e-0000-4a5b-9c7d-000000000001"

def lambda_handler(event, context):
    memory = Memory(event["ns"])
    rid = context.aws_request_id
    memory.append("chat_history", {"user": event["message"]}, idempotency_key=f"{rid}:history")
    turns = memory.incr("turns", idempotency_key=f"{rid}:turns")
    with memory.atomic(idempotency_key=f"{rid}:stats") as tx:
        tx.incr("tokens", 42).append("audit", rid)
    return {"turns": turns}

async def async_handler(event, context):
    async with AsyncMemory(event["ns"]) as memory:
        rid = context.aws_request_id
        await memory.append("chat_history", {"user": event["message"]},
                            idempotency_key=f"{rid}:history")
        turns = await memory.incr("turns", idempotency_key=f"{rid}:turns")
        tx = memory.atomic(idempotency_key=f"{rid}:stats")
        tx.incr("tokens", 42).append("audit", rid)
        await tx.commit()
        return {"turns": turns}

event = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {KIND_EVENT}
if event.pop("kind") == "async":
    print(json.dumps(asyncio.run(async_handler(event, Context()))))
else:
    print(json.dumps(lambda_handler(event, Context())))
"""


def test_a_platform_retry_of_the_whole_invocation_applies_once(
    client: Any, url: str, ns: str
) -> None:
    """Each run is a fresh process, as a retried Lambda invocation is."""
    event = {"ns": ns, "message": "hi", "kind": client.kind}
    code = textwrap.dedent(HANDLER).replace("{KIND_EVENT}", repr(event))
    outs = [run_python(code, env={"BOTWIRE_URL": url}).stdout.strip() for _ in range(3)]
    assert outs == ['{"turns": 1}'] * 3
    m = client(ns, url=url)
    assert m.get("chat_history") == [{"user": "hi"}]
    assert m.get("turns") == 1 and m.get("tokens") == 42
    assert m.get("audit") == ["8f1c2d3e-0000-4a5b-9c7d-000000000001"]


def test_a_repeat_safe_commit_goes_without_a_key(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory
) -> None:
    """``commit(repeat_safe=True)`` is sent without an Idempotency-Key (the server keeps no
    record of it): when its answer is lost after the server applied it, the client's retry
    applies it again, as its caller accepted. The same commit without the flag applies once."""
    m = client(ns, url=proxy.url)
    proxy.set_script(["drop_after"])
    tx = m.atomic()
    tx.set("k", "same").append("seen", "x")
    tx.commit(repeat_safe=True)
    assert proxy.counts["drop_after"] == 1
    assert truth.get("seen") == ["x", "x"] and truth.get("k") == "same"

    proxy.set_script(["drop_after"])
    tx = m.atomic()
    tx.append("once", "y")
    tx.commit()
    assert truth.get("once") == ["y"]


def test_repeat_safe_on_the_embedded_store_applies_once(client: Any, tmp_db: str, ns: str) -> None:
    m = client(ns, url=f"sqlite:///{tmp_db}")
    tx = m.atomic()
    tx.append("seen", "x")
    assert tx.commit(repeat_safe=True) == [1]
    assert m.get("seen") == ["x"]


def test_repeat_safe_with_a_key_is_refused_before_any_io(client: Any, url: str, ns: str) -> None:
    m = client(ns, url=url)
    tx = m.atomic()
    tx.append("seen", "x")
    with pytest.raises(InvalidArgument) as info:
        tx.commit(idempotency_key="req-5", repeat_safe=True)
    assert ns in str(info.value) and "Pass one of them" in str(info.value)
    assert client(ns, url=url).get("seen") is None
