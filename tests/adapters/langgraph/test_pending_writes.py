"""A task's writes wait (``writes_linger``) to ride with the checkpoint put after them, and are
never lost or hidden by the wait: an error or interrupt sends them at once, a read of the saver
sends them first, the linger runs out while a sibling task still runs, ``close`` and the
interpreter's exit send them, a forked child leaves them to its parent, and a put too large to
carry them stores them on their own. Each is read back by *another* client of the same backend,
which sees only what reached it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import ERROR, INTERRUPT
from support.faultproxy import FaultProxy
from support.server import start_server

from botwire import AsyncMemory, Memory
from botwire_langgraph import BotWireSaver
from botwire_langgraph import _keys as K

from .test_saver import _cfg, _cp, _put


def _stored(memory_url: str, namespace: str, config: Any) -> list[Any]:
    """The raw pending-writes items stored for ``config``'s checkpoint, as another client
    reads them."""
    conf = config["configurable"]
    key = K.writes_key(conf["thread_id"], conf.get("checkpoint_ns", ""), conf["checkpoint_id"])
    with Memory(namespace, url=memory_url) as other:
        return list(other.get(key) or [])


def _wait_stored(memory_url: str, namespace: str, config: Any, n: int) -> list[Any]:
    deadline = time.monotonic() + 15
    while len(got := _stored(memory_url, namespace, config)) < n:
        assert time.monotonic() < deadline, f"{len(got)} of {n} items stored after 15 s"
        time.sleep(0.01)
    return got


def test_writes_wait_for_the_next_put_and_ride_in_its_batch(
    memory: Memory, memory_url: str, namespace: str
) -> None:
    saver = BotWireSaver(memory, writes_linger=1)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="task-1")
    assert _stored(memory_url, namespace, first) == []  # waiting, not sent
    second = _put(saver, "t", parent=first, step=2)
    assert len(_stored(memory_url, namespace, first)) == 1  # stored with the put
    got = BotWireSaver(Memory(namespace, url=memory_url)).get_tuple(first)
    assert got is not None and got.pending_writes == [("task-1", "a", 1)]
    assert saver.get_tuple(_cfg("t")).config == second  # type: ignore[union-attr]


def test_a_read_of_the_saver_sends_its_waiting_writes_first(
    memory: Memory, memory_url: str, namespace: str
) -> None:
    saver = BotWireSaver(memory, writes_linger=1)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="task-1")
    got = saver.get_tuple(_cfg("t"))
    assert got is not None and got.pending_writes == [("task-1", "a", 1)]
    assert len(_stored(memory_url, namespace, first)) == 1
    saver.put_writes(first, [("b", 2)], task_id="task-2")
    assert [t.pending_writes for t in saver.list(_cfg("t"))] == [
        [("task-1", "a", 1), ("task-2", "b", 2)]
    ]


@pytest.mark.parametrize("channel", [ERROR, INTERRUPT])
def test_an_error_or_interrupt_sends_every_waiting_write_at_once(
    memory: Memory, memory_url: str, namespace: str, channel: str
) -> None:
    """The run may stop right after a failed or interrupted task: no put would carry the
    finished siblings' writes, so they go with it."""
    saver = BotWireSaver(memory, writes_linger=1)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="done")
    saver.put_writes(first, [(channel, "stop")], task_id="failed")
    assert len(_stored(memory_url, namespace, first)) == 2


def test_the_linger_runs_out_while_a_sibling_still_runs(
    memory: Memory, memory_url: str, namespace: str
) -> None:
    saver = BotWireSaver(memory, writes_linger=0.05)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="quick")
    started = time.monotonic()
    _wait_stored(memory_url, namespace, first, 1)
    assert time.monotonic() - started < 5


def test_close_sends_the_waiting_writes(memory_url: str, namespace: str) -> None:
    saver = BotWireSaver(Memory(namespace, url=memory_url), writes_linger=1)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="task-1")
    saver.close()
    assert len(_stored(memory_url, namespace, first)) == 1


def test_writes_still_waiting_when_a_script_ends_are_sent(
    memory_url: str, namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "ends.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parents[2])!r})
            from botwire import Memory
            from botwire_langgraph import BotWireSaver
            from adapters.langgraph.test_saver import _put
            saver = BotWireSaver(Memory({namespace!r}, url={memory_url!r}), writes_linger=1)
            first = _put(saver, "t", step=1)
            saver.put_writes(first, [("a", 1)], task_id="task-1")
            print(first["configurable"]["checkpoint_id"])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip().splitlines()[-1]
    assert len(_stored(memory_url, namespace, _cfg("t", cid=cid))) == 1


def _child_reads(saver: BotWireSaver, config: Any, out: Any) -> None:
    tup = saver.get_tuple(config)  # a read: sends what *this* process holds, nothing else
    out.put(tup.pending_writes if tup is not None else None)
    saver.close()


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_leaves_its_parents_waiting_writes_to_the_parent(
    memory_url: str, namespace: str
) -> None:
    saver = BotWireSaver(Memory(namespace, url=memory_url), writes_linger=1)
    first = _put(saver, "t", step=1)
    saver.put_writes(first, [("a", 1)], task_id="task-1")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_reads, args=(saver, first, out))
    child.start()
    assert out.get(timeout=30) == []  # the parent's write is not the child's to send
    child.join(30)
    assert child.exitcode == 0
    assert _stored(memory_url, namespace, first) == []
    saver.close()
    assert len(_stored(memory_url, namespace, first)) == 1  # sent once, by the parent


def test_an_async_only_saver_sends_on_its_loop(memory_url: str, namespace: str) -> None:
    async def run() -> list[Any]:
        async with AsyncMemory(namespace, url=memory_url) as am:
            saver = BotWireSaver(am, writes_linger=0.05)
            first = await saver.aput(_cfg("t"), *_checkpoint(saver))
            await saver.aput_writes(first, [("a", 1)], task_id="waits")
            await asyncio.sleep(0.5)  # the linger runs out on this loop
            stored = await asyncio.to_thread(_stored, memory_url, namespace, first)
            await saver.aput_writes(first, [("b", 2)], task_id="rides")
            second = await saver.aput(first, *_checkpoint(saver))
            assert second["configurable"]["checkpoint_id"]
            got = await saver.aget_tuple(first)
            assert got is not None
            return [len(stored), got.pending_writes]

    assert asyncio.run(run()) == [1, [("rides", "b", 2), ("waits", "a", 1)]]  # by task id


def _checkpoint(saver: BotWireSaver) -> tuple[Any, Any, Any]:
    cp = _cp({"ch": 1}, {"ch": saver.get_next_version(None, None)})
    return cp, {"source": "loop", "step": 0, "parents": {}}, cp["channel_versions"]


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "0.01", None])
def test_a_bad_linger_is_refused_naming_the_rule_and_fix(memory: Memory, value: Any) -> None:
    with pytest.raises(ValueError, match=r"writes_linger=.*from 0 to 1.*use 0"):
        BotWireSaver(memory, writes_linger=value)


def test_a_put_too_large_to_carry_the_writes_stores_them_alone(
    tmp_path: Path, namespace: str
) -> None:
    """A server (a small value limit) that refuses the put and the waiting writes together,
    and the writes together: each write is then stored on its own (as each put_writes call
    was accepted), and the put alone; nothing is lost and no error reaches the graph."""
    limit = 64 * 1024  # a batch body of at most 16 x 64 KiB + 64 KiB
    with (
        start_server(
            database=tmp_path / "small.db", env={"BOTWIRE_MAX_VALUE_BYTES": str(limit)}
        ) as server,
        FaultProxy(server.port) as proxy,
        Memory(namespace, url=proxy.url) as m,
    ):
        saver = BotWireSaver(m, writes_linger=1)
        first = _put(saver, "t", step=1)
        for i in range(6):  # ~200 KiB of writes that wait (random hex: deflate halves it)
            saver.put_writes(first, [("w", os.urandom(24 * 1024).hex())], task_id=f"t{i}")
        assert _stored(server.url, namespace, first) == []
        values = {f"c{i}": [os.urandom(16 * 1024).hex()] for i in range(22)}  # ~960 KiB
        versions = {ch: saver.get_next_version(None, None) for ch in values}
        sent = sum(proxy.counts.values())
        second = saver.put(
            first, _cp(values, versions), {"source": "loop", "step": 2, "parents": {}}, versions
        )
        # together (413), the writes together (413: over the single-key limit), each of the
        # 6 writes, the put (the transport may send a refused body twice)
        assert sum(proxy.counts.values()) >= sent + 9
        assert len(_stored(server.url, namespace, first)) == 6
        got = saver.get_tuple(second)
        assert got is not None and got.checkpoint["channel_values"] == values
        assert len(saver.get_tuple(first).pending_writes) == 6  # type: ignore[union-attr]


def _writes_through_a_fault(
    tmp_path: Path, namespace: str, client: str, fault: Callable[[FaultProxy], None]
) -> FaultProxy:
    """A checkpoint put through a proxy, then ``fault(proxy)``, then writes that wait: they
    must reach the server by themselves (no put carries them) and be read back whole. Returns
    the proxy, for what each fault's test asserts of it."""
    with (
        start_server(database=tmp_path / "fault.db") as server,
        FaultProxy(server.port) as proxy,
    ):

        async def run_async() -> Any:
            async with AsyncMemory(namespace, url=proxy.url) as am:
                saver = BotWireSaver(am, writes_linger=0.05)
                first = await saver.aput(_cfg("t"), *_checkpoint(saver))
                fault(proxy)
                await saver.aput_writes(first, [("a", 1)], task_id="waits")
                await asyncio.to_thread(_wait_stored, server.url, namespace, first, 1)
                return first

        if client == "sync":
            with Memory(namespace, url=proxy.url) as m:
                saver = BotWireSaver(m, writes_linger=0.05)
                first = _put(saver, "t", step=1)
                fault(proxy)
                saver.put_writes(first, [("a", 1)], task_id="waits")
                _wait_stored(server.url, namespace, first, 1)
        else:
            first = asyncio.run(run_async())
        got = BotWireSaver(Memory(namespace, url=server.url)).get_tuple(first)
        assert got is not None and got.pending_writes == [("waits", "a", 1)]
    return proxy


@pytest.mark.parametrize("client", ["sync", "async-only"])
def test_writes_that_wait_survive_an_outage_of_the_server(
    tmp_path: Path, namespace: str, client: str
) -> None:
    """The server is unreachable when the linger runs out: the writes are not lost, and
    reach it once it is back, with no put to carry them."""
    proxy = _writes_through_a_fault(
        tmp_path, namespace, client, lambda p: p.go_down(1.0, how="refuse")
    )
    assert proxy.down_answers == 0  # refused, not answered: the writes waited it out


@pytest.mark.parametrize("client", ["sync", "async-only"])
def test_a_refused_flush_keeps_the_writes_and_tries_again(
    tmp_path: Path, namespace: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A flush answered by something that is not the server (an HTML 404 from a proxy, not
    retried by the transport) fails: the writes stay, a warning says so, the next try stores
    them."""
    with caplog.at_level("WARNING", logger="botwire_langgraph"):
        proxy = _writes_through_a_fault(
            tmp_path, namespace, client, lambda p: p.set_script(["html_404"])
        )
    assert proxy.counts["html_404"] == 1
    assert any("not saved yet" in r.getMessage() for r in caplog.records)
