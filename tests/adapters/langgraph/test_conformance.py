"""``BotWireSaver`` against LangGraph's own checkpointer conformance suite
(langgraph-checkpoint-conformance): every base and extended capability must be detected and pass,
through the async methods (what the suite calls) and, via a thin shim, through the sync ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from botwire import Memory
from botwire_langgraph import BotWireSaver

ALL_CAPABILITIES = {
    "put",
    "put_writes",
    "get_tuple",
    "list",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
}
SUITE_SIZE = 81  # tests in langgraph-checkpoint-conformance 0.0.2 across the 8 capabilities


class SyncPathSaver(BotWireSaver):
    """Routes the suite's async calls to the *sync* methods, so the sync code path is held to
    the same conformance suite."""

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Any, **kw: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        for tup in self.list(config, **kw):
            yield tup

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: Any, writes: Sequence[Any], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)


@pytest.mark.parametrize("saver_cls", [BotWireSaver, SyncPathSaver], ids=["async", "sync"])
def test_conformance_suite_passes_in_full(
    memory_url: str, namespace: str, saver_cls: type[BotWireSaver]
) -> None:
    @checkpointer_test(name=saver_cls.__name__)
    async def botwire_saver() -> AsyncIterator[BotWireSaver]:
        memory = Memory(namespace, url=memory_url)
        async with saver_cls(memory) as saver:
            yield saver
        memory.close()

    report = asyncio.run(validate(botwire_saver, progress=ProgressCallbacks.quiet()))
    failures = {
        name: result.failures for name, result in report.results.items() if not result.passed
    }
    assert failures == {}, failures
    assert set(report.results) == ALL_CAPABILITIES
    assert all(r.detected for r in report.results.values())
    assert sum(r.tests_passed for r in report.results.values()) == SUITE_SIZE
    assert sum(r.tests_failed for r in report.results.values()) == 0
