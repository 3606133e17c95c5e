"""Round trips per BotWireSaver operation as a thread's history grows.

Every call a ``Memory`` makes to its store (``get``, ``batch``, one ``list_keys`` page) is one
round trip over HTTP, so counting store calls on the embedded store gives the figure without
timing noise. Usage::

    uv run python benchmarks/langgraph_roundtrips.py [--sizes 10 1000] [--json]

Prints, for threads of each size, the store calls of: put, put_writes sent alone
(``writes_linger=0``), a step (a task's put_writes, then the put of the next checkpoint, which
carries them), get_tuple (latest), get_tuple (by id), list(limit=10),
list(before=..., limit=10) and list() of the whole thread.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.base.id import uuid6

from botwire import Memory
from botwire.store import SQLiteStore
from botwire_langgraph import BotWireSaver


class CountingStore:
    """Forwards to a real store and counts calls (= round trips over HTTP)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def get(self, *a: Any, **kw: Any) -> Any:
        self.calls["get"] += 1
        return self.inner.get(*a, **kw)

    def batch(self, *a: Any, **kw: Any) -> Any:
        self.calls["batch"] += 1
        return self.inner.batch(*a, **kw)

    def list_keys(self, *a: Any, **kw: Any) -> Any:
        self.calls["list_keys"] += 1
        return self.inner.list_keys(*a, **kw)

    def clear(self, *a: Any, **kw: Any) -> Any:
        return self.inner.clear(*a, **kw)

    def usage(self, *a: Any, **kw: Any) -> Any:
        return self.inner.usage(*a, **kw)

    def close(self) -> None:
        self.inner.close()

    def total(self) -> int:
        return sum(self.calls.values())


def _checkpoint(step: int, versions: dict[str, Any], values: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        v=4,
        id=str(uuid6(clock_seq=step)),
        ts=datetime.now(timezone.utc).isoformat(),
        channel_values=values,
        channel_versions=dict(versions),
        versions_seen={"agent": dict(versions), "tools": dict(versions)},
        updated_channels=list(values),
    )


def build_thread(saver: BotWireSaver, thread: str, n: int) -> list[dict[str, Any]]:
    """``n`` checkpoints shaped like an agent loop: 'messages' changes every step, 'profile'
    never after the first, so later checkpoints point at older blobs."""
    configs: list[dict[str, Any]] = []
    parent: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    versions: dict[str, Any] = {}
    messages: list[str] = []
    for step in range(n):
        messages = [*messages[-20:], f"message {step}"]
        new = {"messages": saver.get_next_version(versions.get("messages"), None)}
        if step == 0:
            new["profile"] = saver.get_next_version(None, None)
        versions.update(new)
        values = {"messages": messages, "profile": {"name": "alice"}}
        cp = _checkpoint(step, versions, values)
        md: Any = {"source": "loop", "step": step, "parents": {}, "run_id": "run-1"}
        parent = saver.put(parent, cp, md, new)  # type: ignore[arg-type]
        saver.put_writes(parent, [("messages", [f"w{step}"])], f"task-{step}")  # type: ignore[arg-type]
        configs.append(parent)
    return configs


def measure_one(path: Path, n: int) -> dict[str, int]:
    """Store calls per operation on a thread of ``n`` checkpoints kept in ``path``."""
    store = CountingStore(SQLiteStore(path))
    memory = Memory("langgraph", store=store)  # type: ignore[arg-type]
    # a linger no stall of this machine reaches: the step's count does not depend on timing
    saver = BotWireSaver(memory, writes_linger=1)
    alone = BotWireSaver(memory, writes_linger=0)
    configs = build_thread(saver, "thread", n)
    latest: Any = {"configurable": {"thread_id": "thread", "checkpoint_ns": ""}}
    middle = configs[n // 2]

    def count(fn: Any) -> int:
        before = store.total()
        fn()
        return store.total() - before

    figures = {
        "put": count(prepare_put(saver, configs[-1], n)),
        "put_writes": count(lambda: alone.put_writes(configs[-1], [("x", 1)], "t-extra")),  # type: ignore[arg-type]
        "step": count(prepare_step(saver, configs[-1], n + 1)),
        "get_tuple_latest": count(lambda: saver.get_tuple(latest)),
        # another process's saver: it knows no pointer of the thread yet
        "get_tuple_latest_cold": count(lambda: BotWireSaver(memory).get_tuple(latest)),
        "get_tuple_by_id": count(lambda: saver.get_tuple(middle)),  # type: ignore[arg-type]
        "list_limit_10": count(lambda: list(saver.list(latest, limit=10))),
        "list_before_limit_10": count(lambda: list(saver.list(latest, before=middle, limit=10))),  # type: ignore[arg-type]
        "list_all": count(lambda: list(saver.list(latest))),
    }
    tup = saver.get_tuple(latest)
    assert tup is not None
    assert tup.checkpoint["channel_values"]["profile"] == {"name": "alice"}
    store.close()
    return figures


def measure(sizes: list[int]) -> dict[int, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        return {n: measure_one(Path(tmp) / f"rt-{n}.db", n) for n in sizes}


def prepare_put(saver: BotWireSaver, parent: dict[str, Any], step: int) -> Any:
    """One more checkpoint on the thread, ready to put; returns the call to count."""
    tup = saver.get_tuple(parent)  # type: ignore[arg-type]
    assert tup is not None
    versions = dict(tup.checkpoint["channel_versions"])
    new = {"messages": saver.get_next_version(versions["messages"], None)}
    versions.update(new)
    cp = _checkpoint(step, versions, {"messages": ["m"], "profile": {"name": "alice"}})
    md: Any = {"source": "loop", "step": step, "parents": {}}
    return lambda: saver.put(parent, cp, md, new)  # type: ignore[arg-type]


def prepare_step(saver: BotWireSaver, parent: dict[str, Any], step: int) -> Any:
    """A new checkpoint after ``parent`` (not counted), then the call to count: a task's writes
    against it and the put of its child, as LangGraph makes them."""
    current = prepare_put(saver, parent, step)()
    put = prepare_put(saver, current, step + 1)

    def run() -> None:
        saver.put_writes(current, [("messages", ["w"])], "t-step")
        put()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.sizes)
    if args.json:
        print(json.dumps(figures))
        return
    ops = list(next(iter(figures.values())))
    print(f"{'operation':<24}" + "".join(f"{n:>10} cps" for n in figures))
    for op in ops:
        print(f"{op:<24}" + "".join(f"{figures[n][op]:>14}" for n in figures))


if __name__ == "__main__":
    main()
