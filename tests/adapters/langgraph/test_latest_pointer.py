"""``get_tuple`` of a thread's latest checkpoint by the saver that wrote (or last read) it: the
pointer it knows and what that pointer names are read in one batch, and used only if the
pointer read is still that one. Another saver (another process) writing, deleting or copying
the thread in between must never make it answer with what it remembered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from botwire import Memory
from botwire_langgraph import BotWireSaver

from .test_saver import _cfg, _put


def _id(found: Any) -> str:
    assert found is not None
    return str(found.config["configurable"]["checkpoint_id"])


def _calls(memory: Memory) -> list[int]:
    """A counter of the reads ``memory`` sends (each one request to a server)."""
    count = [0]

    def counted(fn: Any) -> Any:
        def call(*a: Any, **kw: Any) -> Any:
            count[0] += 1
            return fn(*a, **kw)

        return call

    memory.get_many = counted(memory.get_many)  # type: ignore[method-assign]
    memory.get = counted(memory.get)  # type: ignore[method-assign]
    return count


@pytest.mark.parametrize("blob", [False, True])
def test_a_put_by_another_saver_is_read_not_the_pointer_remembered(
    memory: Memory, blob: bool
) -> None:
    ours, theirs = BotWireSaver(memory, writes_linger=0), BotWireSaver(memory, writes_linger=0)
    first = _put(ours, "t", step=1, blob=blob)
    assert _id(ours.get_tuple(_cfg("t"))) == first["configurable"]["checkpoint_id"]
    second = _put(theirs, "t", parent=first, step=2, blob=blob)
    theirs.put_writes(second, [("a", 1)], task_id="task-1")
    for _ in range(2):  # and again, now that ours knows the new pointer
        got = ours.get_tuple(_cfg("t"))
        assert _id(got) == second["configurable"]["checkpoint_id"]
        assert got is not None and got.pending_writes == [("task-1", "a", 1)]
        assert got.checkpoint["channel_values"]["ch"] == ([2] if blob else 2)


def test_a_thread_deleted_by_another_saver_reads_as_gone(memory: Memory) -> None:
    ours, theirs = BotWireSaver(memory), BotWireSaver(memory)
    first = _put(ours, "t", step=1, blob=True)
    assert ours.get_tuple(_cfg("t")) is not None
    theirs.delete_thread("t")
    assert ours.get_tuple(_cfg("t")) is None
    again = _put(ours, "t", step=3, blob=True)  # and the thread starts afresh
    assert _id(ours.get_tuple(_cfg("t"))) == again["configurable"]["checkpoint_id"]
    assert again != first


def test_a_thread_copied_over_by_another_saver_reads_the_copy(memory: Memory) -> None:
    ours, theirs = BotWireSaver(memory), BotWireSaver(memory)
    _put(ours, "target", step=1)
    source = _put(theirs, "source", step=7)
    theirs.copy_thread("source", "target")
    got = ours.get_tuple(_cfg("target"))
    assert _id(got) == source["configurable"]["checkpoint_id"]
    assert got is not None and got.checkpoint["channel_values"]["ch"] == 7


def test_the_saver_that_wrote_reads_its_thread_in_one_batch(memory: Memory) -> None:
    """Counted: the remembered pointer costs one batch; a pointer another saver moved, two."""
    ours, theirs = BotWireSaver(memory, writes_linger=0), BotWireSaver(memory, writes_linger=0)
    first = _put(ours, "t", step=1, blob=True)
    calls = _calls(memory)
    assert _id(ours.get_tuple(_cfg("t"))) == first["configurable"]["checkpoint_id"]
    assert calls[0] == 1
    assert _id(theirs.get_tuple(_cfg("t"))) == first["configurable"]["checkpoint_id"]
    assert calls[0] == 3  # a saver that knew nothing: the pointer, then what it names
    second = _put(theirs, "t", parent=first, step=2, blob=True)
    calls[0] = 0
    assert _id(ours.get_tuple(_cfg("t"))) == second["configurable"]["checkpoint_id"]
    assert calls[0] == 2  # the batch of what it knew, then what the pointer read names


def test_the_async_saver_reads_what_another_saver_wrote(memory_url: str, namespace: str) -> None:
    url = memory_url

    async def body() -> tuple[str, str]:
        from botwire import AsyncMemory

        async with AsyncMemory(namespace, url=url) as m:
            ours, theirs = BotWireSaver(m), BotWireSaver(m)
            first = await ours.aput(*_args(ours, _cfg("t"), 1))
            known = _id(await ours.aget_tuple(_cfg("t")))
            assert known == first["configurable"]["checkpoint_id"]
            second = await theirs.aput(*_args(theirs, first, 2))
            return _id(await ours.aget_tuple(_cfg("t"))), second["configurable"]["checkpoint_id"]

    got, want = asyncio.run(body())
    assert got == want


def _args(saver: BotWireSaver, cfg: Any, step: int) -> tuple[Any, ...]:
    from .test_saver import _cp

    cp = _cp({"ch": [step]}, {"ch": saver.get_next_version(None, None)})
    meta: Any = {"source": "loop", "step": step, "parents": {}}
    return cfg, cp, meta, cp["channel_versions"]
