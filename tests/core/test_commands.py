"""The client's commands are defined once (botwire/_commands.py) and run two ways: a plain call
on ``Memory``/``Transaction``, a coroutine on ``AsyncMemory``/``AsyncTransaction``."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

from botwire import AsyncMemory, Memory
from botwire._atomic import AsyncTransaction, Transaction
from botwire._memory import Commands

COMMANDS = sorted(
    name for name, fn in vars(Commands).items() if getattr(fn, "_botwire_command", False)
)

# The public methods each class had before the commands were shared (wave 2): none may go.
# Memory gained contains(); AsyncMemory gained items() and values(), and update() takes the
# dict.update form too, as Memory's does: one definition cannot differ.
MEMORY_BEFORE = {
    "append", "as_async", "atomic", "clear", "close", "delete", "delete_many", "entries",
    "entry", "get", "get_many", "incr", "items", "iter_keys", "keys", "list", "pop", "popitem",
    "set", "set_many", "setdefault", "tail", "update", "url", "usage", "values", "with_namespace",
}  # fmt: skip
ASYNC_BEFORE = {
    "aclose", "append", "atomic", "clear", "contains", "delete", "delete_many", "entries",
    "entry", "get", "get_many", "incr", "iter_keys", "keys", "list", "pop", "set", "set_many",
    "tail", "update", "url", "usage", "with_namespace",
}  # fmt: skip


# Methods added since, by issue (each is a documented feature, not a rename):
ADDED = {"watch", "watch_prefix"}  # issue 18: watch


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_no_public_method_went_away() -> None:
    assert _public(Memory) >= MEMORY_BEFORE
    assert _public(AsyncMemory) >= ASYNC_BEFORE
    assert _public(Memory) - MEMORY_BEFORE - ADDED == {"contains", *ADDED_18, *BUILDERS_18}
    assert _public(AsyncMemory) - ASYNC_BEFORE - ADDED == {
        "items",
        "values",
        *ADDED_18,
        *BUILDERS_18,
    }


# Commands added since, each in a mixin of Commands (one definition for both classes).
ADDED_18 = {"policy", "set_policy"}  # issue 18: retention policies (botwire/_policy.py)
# Builders added since (issue 18): lease() (botwire/_lease.py) and queue() (botwire/_queue.py).
BUILDERS_18 = {"lease", "queue"}


def test_mixin_commands_are_one_function_run_two_ways() -> None:
    for name in ADDED_18 | ADDED:
        sync, coro = getattr(Memory, name), getattr(AsyncMemory, name)
        assert sync.__wrapped__ is coro.__wrapped__, name
        assert inspect.iscoroutinefunction(coro) and not inspect.iscoroutinefunction(sync)
        assert inspect.signature(sync) == inspect.signature(coro), name


def test_every_public_method_of_both_classes_is_documented() -> None:
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in (Memory, AsyncMemory, Transaction, AsyncTransaction)
        for name in _public(cls)
        if not (getattr(cls, name).__doc__ or "").strip()
    ]
    assert undocumented == []
    for cls in (Memory, AsyncMemory, Transaction, AsyncTransaction):
        assert "Example::" in (cls.__doc__ or ""), cls


def test_each_command_is_one_function_run_two_ways() -> None:
    assert len(COMMANDS) >= 20, COMMANDS
    for name in COMMANDS:
        sync, coro = getattr(Memory, name), getattr(AsyncMemory, name)
        assert sync.__wrapped__ is coro.__wrapped__ is vars(Commands)[name]
        assert not inspect.iscoroutinefunction(sync), name
        assert inspect.iscoroutinefunction(coro), name
        assert inspect.signature(sync) == inspect.signature(coro), name
        assert sync.__doc__ == coro.__doc__ and sync.__qualname__ == f"Memory.{name}"
    commit = Transaction.commit, AsyncTransaction.commit
    assert commit[0].__wrapped__ is commit[1].__wrapped__
    assert inspect.iscoroutinefunction(commit[1]) and not inspect.iscoroutinefunction(commit[0])


def test_no_command_body_is_written_in_memory_or_async_memory() -> None:
    """The two client classes hold their I/O edges only (construction, iteration, closing):
    a command written again in either of them would shadow the shared one."""
    for cls in (Memory, AsyncMemory):
        own = {name for name in vars(cls) if name in COMMANDS}
        assert all(vars(cls)[name].__wrapped__ is vars(Commands)[name] for name in own), cls
        source = inspect.getsource(cls)
        assert "_store.batch(" not in source and "_store.get(" not in source, cls


def test_a_subclass_keeps_its_own_override(tmp_path: Path) -> None:
    class Audited(Memory):
        def get(self, key: str, default: object = None) -> object:
            return ("audited", super().get(key, default))

    m = Audited("ns", url=f"sqlite:///{tmp_path}/m.db")
    m.set("k", 1)
    assert m.get("k") == ("audited", 1)
    assert m.tail("absent", 3) == [] and m.contains("k")  # inherited commands still run
    m.close()


def test_update_backs_off_with_the_runner_own_sleep(tmp_path: Path) -> None:
    """update() waits between lost races by yielding ``_sleep``: time.sleep on Memory, an
    awaited asyncio.sleep on AsyncMemory (never a blocking sleep inside the event loop)."""
    assert Memory._sleep.__module__ == "time"
    coro = AsyncMemory._sleep(0)
    assert inspect.iscoroutine(coro)
    coro.close()

    async def main() -> int:
        am = AsyncMemory("ns", url=f"sqlite:///{tmp_path}/a.db")
        try:
            await asyncio.gather(*(am.update("n", lambda v: v + 1, default=0) for _ in range(5)))
            return int(await am.get("n"))
        finally:
            await am.aclose()

    assert asyncio.run(main()) == 5


def test_update_takes_any_keyword_as_dict_update_does(tmp_path: Path) -> None:
    """``update(self=1)`` sets the key "self", as ``dict.update`` does (found by mypy: the
    command's ``self`` was not positional-only, so the keyword collided with it)."""
    expected = {"self": 1, "other": 2}
    plain: dict[str, int] = {}
    plain.update(self=1, other=2)
    assert plain == expected
    m = Memory("ns", url=f"sqlite:///{tmp_path}/m.db")
    try:
        m.update(self=1, other=2)
        assert dict(m.items()) == expected
    finally:
        m.close()

    async def main() -> dict[str, int]:
        am = AsyncMemory("ns2", url=f"sqlite:///{tmp_path}/m.db")
        try:
            await am.update(self=1, other=2)
            return dict(await am.items())
        finally:
            await am.aclose()

    assert asyncio.run(main()) == expected
