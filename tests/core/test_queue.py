"""Hand-off queues (issue 18 item 3) on every backend: embedded SQLite, HTTP to a real
botwire-server on SQLite and on PostgreSQL (the session's ``backend`` fixture). Time moves with
the backends' testing clocks (TTLs are the store's clock), never with sleeps, except where a
test measures a real wake-up."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from botwire import (
    AsyncQueue,
    Claimed,
    ClaimExpired,
    Conflict,
    InvalidArgument,
    Memory,
    Queue,
    QueueStats,
    TypeMismatch,
)

PREFIX = ".botwire/queue/"


def _queue(backend: Any, ns: str, name: str = "jobs", **kw: Any) -> Queue:
    return backend.memory(ns).queue(name, **kw)


def test_put_claim_ack_in_put_order(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    items: list[Any] = [{"n": 0}, "text", 3.5, None, [1, {"deep": True}]]
    ids = [q.put(item) for item in items]
    assert len(set(ids)) == 5 and len(q) == 5 and q.size() == 5
    got = []
    for _ in items:
        c = q.claim(visibility=30)
        assert isinstance(c, Claimed) and c.claims == 1 and c.expires_at is not None
        got.append((c.id, c.item))
        q.ack(c)
    assert got == list(zip(ids, items, strict=True))  # one consumer: exactly put order
    assert q.claim() is None
    assert q.stats() == QueueStats(0, 0, 0, 0)
    assert backend.memory(ns).list(PREFIX) == []  # an acked item leaves no key behind


def test_a_crashed_consumers_item_reappears_after_its_visibility(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    q.put({"task": 1})
    first = q.claim(visibility=5)
    assert first is not None
    assert q.claim() is None  # claimed: invisible to others
    assert q.stats() == QueueStats(0, 1, 0, 0)
    backend.advance(6)  # the consumer "crashed": its claim's TTL runs out on the store's clock
    again = q.claim(visibility=30)
    assert again is not None and again.id == first.id and again.claims == 2
    assert again.receipt != first.receipt
    # the first consumer wakes up and acks late: refused, and told why
    with pytest.raises(ClaimExpired) as info:
        q.ack(first)
    assert isinstance(info.value, Conflict)
    message = str(info.value)
    assert "'jobs'" in message and ns in message and "processed twice" in message
    assert "claimed the item again" in message
    q.ack(again)  # the current holder's ack works
    assert q.size() == 0
    with pytest.raises(ClaimExpired, match="no longer in the queue"):
        q.ack(again)  # twice: gone


def test_an_ack_after_expiry_but_before_redelivery_succeeds(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    q.put("x")
    c = q.claim(visibility=2)
    assert c is not None
    backend.advance(3)
    q.ack(c)  # nobody claimed it again: no double processing happened, so it is removed
    assert q.claim() is None and q.size() == 0


def test_delay_holds_an_item_on_the_stores_clock(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    q.put("later", delay=10)
    q.put("now")
    c = q.claim()
    assert c is not None and c.item == "now"
    q.ack(c)
    assert q.claim() is None
    assert q.stats() == QueueStats(0, 0, 1, 0)
    backend.advance(11)
    c = q.claim()
    assert c is not None and c.item == "later"
    q.ack(c)


def test_nack_returns_the_item_at_once_or_after_a_delay(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    a, b = q.put("a"), q.put("b")
    c = q.claim()
    assert c is not None and c.id == a
    q.nack(c)  # back at once, in its place (before b)
    c = q.claim()
    assert c is not None and c.id == a and c.claims == 2
    q.nack(c.receipt, delay=30)  # a receipt string works as well
    c = q.claim()
    assert c is not None and c.id == b
    q.ack(c)
    assert q.claim() is None
    backend.advance(31)
    c = q.claim()
    assert c is not None and c.id == a and c.claims == 3
    q.ack(c)


def test_a_poison_item_moves_to_the_dead_letters_after_max_claims(backend: Any, ns: str) -> None:
    q = _queue(backend, ns, max_claims=3)
    poison = q.put({"bad": True})
    for n in range(1, 4):
        c = q.claim(visibility=2)
        assert c is not None and c.id == poison and c.claims == n
        if n % 2:
            q.nack(c)  # a consumer that fails cleanly
        else:
            backend.advance(3)  # a consumer that crashed
    good = q.put({"bad": False})
    c = q.claim()  # the 4th claim of the poison item buries it and moves on
    assert c is not None and c.id == good
    q.ack(c)
    [dead] = q.dead()
    assert (dead.id, dead.item, dead.claims) == (poison, {"bad": True}, 3)
    assert q.stats() == QueueStats(0, 0, 0, 1) and q.size() == 0
    assert q.claim() is None


def test_a_default_ttl_never_expires_queue_items(backend: Any, ns: str) -> None:
    """A retention policy's ``default_ttl`` (a namespace's or the server's ``--default-ttl``)
    ages the namespace's own keys, never a queue's: an item leaves only by ack or as a dead
    letter, and its claim counter stays with it (docs/coordination.md, "Retention")."""
    mem = backend.memory(ns)
    mem.set_policy(default_ttl=5)
    q = mem.queue("jobs", max_claims=1)
    held = q.put("held", delay=8)
    claimed, poison = q.put("claimed"), q.put("poison")
    work = q.claim(visibility=60)
    assert work is not None and work.id == claimed
    bad = q.claim(visibility=2)
    assert bad is not None and bad.id == poison
    backend.advance(3)
    assert q.claim() is None  # the poison item's 2nd claim buries it; "held" is delayed
    mem.set("plain", 1)
    backend.advance(10)  # past the policy's 5 s, and the delay's 8
    assert mem.get("plain") is None  # the policy holds for the namespace's own keys
    assert q.stats() == QueueStats(1, 1, 0, 1)  # nothing of the queue expired
    assert [d.id for d in q.dead()] == [poison]
    q.ack(work)  # the claim is still the one taken before: no false ClaimExpired
    again = q.claim()
    assert again is not None and again.id == held and again.claims == 1
    q.ack(again)
    assert q.stats() == QueueStats(0, 0, 0, 1)


def test_put_with_an_idempotency_key_adds_once(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    first = q.put({"order": 7}, idempotency_key="req-123")
    again = q.put({"order": 7}, idempotency_key="req-123")  # the platform re-ran the function
    assert first == again and q.size() == 1
    c = q.claim()
    assert c is not None
    q.ack(c)
    assert q.put({"order": 7}, idempotency_key="req-123") == first  # even after the ack
    assert q.size() == 0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: m.queue("a/b"), "queue name 'a/b'"),
        (lambda m: m.queue(""), "queue name ''"),
        (lambda m: m.queue("j", max_claims=0), "max_claims=0"),
        (lambda m: m.queue("j").put(1, delay=-1), "delay=-1"),
        (lambda m: m.queue("j").put(1, delay=float("nan")), "delay=nan"),
        (lambda m: m.queue("j").claim(visibility=0), "visibility=0"),
        (lambda m: m.queue("j").claim(wait=-2), "wait=-2"),
        (lambda m: m.queue("j").claim(visibility="30"), "visibility='30'"),
        (lambda m: m.queue("j").ack("garbage"), "'garbage' is not a receipt of queue 'j'"),
        (lambda m: m.queue("j").nack("00000000000000000000zz.5"), "not a receipt"),
        (lambda m: m.queue("j").put(1, idempotency_key="a\nb"), "idempotency_key="),
    ],
)
def test_bad_arguments_are_refused_before_any_write(
    backend: Any, ns: str, call: Any, words: str
) -> None:
    memory = backend.memory(ns)
    memory.queue("j").put("kept")
    with pytest.raises(InvalidArgument) as info:
        call(memory)
    assert words in str(info.value) and ns in str(info.value)
    assert memory.queue("j").size() == 1  # nothing stored was lost or added


def test_foreign_keys_under_the_queue_prefix_are_ignored(backend: Any, ns: str) -> None:
    memory = backend.memory(ns)
    q = memory.queue("jobs")
    # a confused (or hostile) writer puts keys of the wrong shape under the queue's prefix
    memory.set(f"{PREFIX}jobs/i/not-an-id", "junk")
    memory.set(f"{PREFIX}jobs/i/{'0' * 22}.zz", "junk")
    memory.set(f"{PREFIX}jobs/d/junk", "not a dead letter")
    ident = q.put("real")
    c = q.claim()
    assert c is not None and c.id == ident
    q.ack(c)
    assert q.claim() is None and q.dead() == [] and q.stats() == QueueStats(0, 0, 0, 0)


def test_queues_are_independent_and_names_round_trip(backend: Any, ns: str) -> None:
    memory = backend.memory(ns)
    odd = memory.queue("jobs #1 ?%:é 🚀")
    plain = memory.queue("jobs")
    odd.put("odd")
    plain.put("plain")
    c = plain.claim()
    assert c is not None and c.item == "plain"
    c2 = odd.claim()
    assert c2 is not None and c2.item == "odd"
    with pytest.raises(ClaimExpired):
        plain.ack(c2)  # a receipt of another queue names nothing here
    odd.ack(c2)
    plain.ack(c)


def test_claim_looks_past_a_first_page_of_claimed_items(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    for i in range(70):  # 70 in flight = 210 keys (item, claim, counter): over one page
        q.put(i)
    for _ in range(70):
        assert q.claim(visibility=60) is not None
    last = q.put("last")
    c = q.claim()
    assert c is not None and c.id == last
    assert q.stats() == QueueStats(0, 71, 0, 0)


def test_claim_wait_wakes_on_a_put_from_another_thread(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    producer = _queue(backend, ns)
    put_at: list[float] = []

    def put_later() -> None:
        time.sleep(0.5)
        put_at.append(time.monotonic())
        producer.put("hello")

    t = threading.Thread(target=put_later)
    t.start()
    try:
        c = q.claim(wait=10)
        woke = time.monotonic()
    finally:
        t.join()
    assert c is not None and c.item == "hello"
    print(f"FIGURE queue claim(wait) woke {1000 * (woke - put_at[0]):.0f} ms after the put")


def test_claim_wait_wakes_when_a_claim_expires(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    q.put("retry me")
    first = q.claim(visibility=5)
    assert first is not None
    # no write happens when a claim's TTL runs out: the waiting claim must look again itself
    t = threading.Timer(0.5, backend.advance, args=(6,))
    start = time.monotonic()
    t.start()
    try:
        c = q.claim(wait=60)
    finally:
        t.cancel()
        t.join()
    woke = time.monotonic() - start
    assert c is not None and c.id == first.id and c.claims == 2
    assert woke < 30  # woke at the expiry, not at the end of its wait (lenient: a loaded CI)
    print(f"FIGURE queue claim(wait) woke {1000 * (woke - 0.5):.0f} ms after the claim expired")


def test_claim_wait_gives_up_at_its_deadline(backend: Any, ns: str) -> None:
    q = _queue(backend, ns)
    start = time.monotonic()
    assert q.claim(wait=0.3) is None
    assert time.monotonic() - start >= 0.3


def test_async_queue_has_the_same_commands(backend: Any, ns: str) -> None:
    async def main() -> None:
        async with backend.amemory(ns) as amemory:
            q = amemory.queue("jobs", max_claims=2)
            assert isinstance(q, AsyncQueue)
            ident = await q.put({"a": 1}, delay=5)
            assert await q.claim() is None
            backend.advance(6)
            c = await q.claim(visibility=3)
            assert c is not None and c.id == ident
            await q.nack(c)
            c = await q.claim(visibility=3)
            assert c is not None and c.claims == 2
            backend.advance(4)
            again = await q.claim(wait=0.2)  # the 3rd claim buries it (max_claims=2)
            assert again is None
            with pytest.raises(ClaimExpired):
                await q.ack(c)
            assert [d.id for d in await q.dead()] == [ident]
            assert await q.size() == 0
            assert await q.stats() == QueueStats(0, 0, 0, 1)

            async def put_soon() -> None:
                await asyncio.sleep(0.3)
                await q.put("woken")

            task = asyncio.ensure_future(put_soon())
            c = await q.claim(wait=10)
            await task
            assert c is not None and c.item == "woken"
            await q.ack(c.receipt)

    asyncio.run(main())


def test_a_closed_memory_refuses_queue_calls(tmp_path: Any) -> None:
    memory = Memory("ns", url=f"sqlite:///{tmp_path}/m.db")
    q = memory.queue("jobs")
    q.put(1)
    memory.close()
    from botwire import Closed

    with pytest.raises(Closed):
        q.claim()


def test_a_queue_on_a_third_party_store_of_the_six_methods() -> None:
    """No server route, no engine: the queue is built on the Store protocol alone, so a store of
    the six required methods (tests/support/dictstore.py) runs it, expiry and dead letters
    included."""
    from support.dictstore import DictStore

    from botwire.testing import Clock, StoreBackend

    clock = Clock()
    backend = StoreBackend(DictStore(clock), clock)
    q = backend.memory("third-party").queue("jobs", max_claims=1)
    a, b = q.put("a"), q.put("b", delay=5)
    c = q.claim(visibility=3)
    assert c is not None and c.id == a
    assert q.claim() is None and q.stats() == QueueStats(0, 1, 1, 0)
    clock.advance(6)  # a's claim expires, b's delay ends
    c2 = q.claim()
    assert c2 is not None and c2.id == b  # a was claimed once already: buried on the way
    q.ack(c2)
    assert [d.id for d in q.dead()] == [a] and q.size() == 0


def test_a_corrupt_claim_counter_is_named_with_its_fix(backend: Any, ns: str) -> None:
    memory = backend.memory(ns)
    q = memory.queue("jobs")
    ident = q.put({"keep": "me"})
    counter = f"{PREFIX}jobs/i/{ident}.n"
    memory.set(counter, "oops")  # a confused writer overwrites the queue's counter
    with pytest.raises(TypeMismatch) as info:
        q.claim()
    message = str(info.value)
    assert ident in message and "'jobs'" in message and ns in message
    assert counter in message and "Delete that key" in message
    memory.delete(counter)  # the fix the message gives
    c = q.claim()
    assert c is not None and c.item == {"keep": "me"}  # nothing stored was lost
    q.ack(c)
