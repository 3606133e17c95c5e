"""Where BotWireStorage used to diverge from CrewAI's own LanceDB storage (issue 19 item 8).

- An embedding of another size is refused up front (``EmbeddingDimensionMismatchError``, as
  LanceDB raises), instead of being stored and making every later search fail.
- After CrewAI's ``Memory.close()`` (which closes its storage) the storage keeps working, as
  LanceDB's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from crewai.memory import Memory as CrewMemory
from crewai.memory import MemoryRecord
from crewai.memory.storage.backend import EmbeddingDimensionMismatchError
from crewai_helpers import ScriptedLLM, hash_embedder

from botwire import Memory
from botwire_crewai import BotWireStorage
from botwire_crewai._records import DIM_KEY


def rec(rid: str, vec: list[float] | None) -> MemoryRecord:
    at = datetime(2026, 1, 1, 12, 0, 0)
    return MemoryRecord(id=rid, content=rid, embedding=vec, created_at=at, last_accessed=at)


@pytest.fixture
def storage(memory_url: str, ns: str) -> Iterator[BotWireStorage]:
    s = BotWireStorage(ns, url=memory_url)
    yield s
    s.close()


def test_another_dimension_is_refused_up_front_and_search_keeps_working(
    storage: BotWireStorage, memory_url: str
) -> None:
    storage.save([rec("a", [1.0, 0.0]), rec("plain", None)])
    with pytest.raises(EmbeddingDimensionMismatchError) as refused:
        storage.save([rec("b", [0.0, 1.0, 0.0])])
    assert (refused.value.stored_dim, refused.value.new_dim) == (2, 3)
    assert repr(storage.namespace) in str(refused.value) and "reset()" in str(refused.value)
    with pytest.raises(EmbeddingDimensionMismatchError):  # a mixed batch: nothing of it written
        storage.save([rec("c", [0.0, 1.0]), rec("d", [1.0, 0.0, 0.0])])
    with pytest.raises(EmbeddingDimensionMismatchError):
        storage.update(rec("a", [1.0, 0.0, 0.0]))
    with pytest.raises(EmbeddingDimensionMismatchError):
        asyncio.run(storage.asave([rec("e", [1.0, 0.0, 0.0])]))
    other = BotWireStorage(storage.namespace, url=memory_url)  # another process's client
    with pytest.raises(EmbeddingDimensionMismatchError):
        other.save([rec("f", [1.0] * 5)])
    other.close()
    assert sorted(r.id for r in storage.list_records()) == ["a", "plain"]
    assert [r.id for r, _ in storage.search([1.0, 0.0])] == ["a"]  # still searchable
    storage.save([rec("g", [0.0, 1.0]), rec("h", None)])  # the same size is fine
    storage.reset()  # an empty memory takes a new embedder
    storage.save([rec("i", [1.0, 0.0, 0.0])])
    assert [r.id for r, _ in storage.search([1.0, 0.0, 0.0])] == ["i"]


def test_a_namespace_saved_before_the_dimension_key_is_guarded_by_its_records(
    storage: BotWireStorage, memory_url: str
) -> None:
    storage.save([rec("a", [1.0, 0.0])])
    with Memory(storage.namespace, url=memory_url) as raw:
        assert raw.get(DIM_KEY) == 2
        raw.delete(DIM_KEY)  # as an earlier release left it
    with pytest.raises(EmbeddingDimensionMismatchError):
        storage.save([rec("b", [1.0, 0.0, 0.0])])
    storage.save([rec("c", [0.0, 1.0])])
    assert [r.id for r, _ in storage.search([0.0, 1.0])] == ["c", "a"]


def test_crewai_memory_with_another_embedder_fails_clearly_and_recall_survives(
    storage: BotWireStorage, memory_url: str
) -> None:
    llm = ScriptedLLM(model="scripted")
    first = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)  # 64 dimensions
    first.remember("The client prefers solar panels from Norway", scope="/c", importance=0.5)
    first.drain_writes()

    def small_embedder(texts: list[str]) -> list[list[float]]:
        return hash_embedder(texts, dim=16)

    other_storage = BotWireStorage(storage.namespace, url=memory_url)
    second = CrewMemory(storage=other_storage, embedder=small_embedder, llm=llm)
    with pytest.raises(EmbeddingDimensionMismatchError):
        second.remember("Quarterly revenue grew by ten percent", scope="/f", importance=0.5)
    second.drain_writes()
    other_storage.close()
    matches = first.recall("which solar panels does the client prefer", depth="shallow")
    assert [m.record.content for m in matches] == ["The client prefers solar panels from Norway"]


def test_storage_keeps_working_after_crewai_memory_close(storage: BotWireStorage) -> None:
    llm = ScriptedLLM(model="scripted")
    mem = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)
    mem.remember("The office moved to Oslo", scope="/facts", importance=0.5)
    mem.close()  # drains, then calls storage.close()
    assert storage.count() == 1
    storage.save([rec("after-close", hash_embedder(["Oslo office"])[0])])
    assert {r.content for r in storage.list_records()} == {
        "The office moved to Oslo",
        "after-close",
    }
    again = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)
    hits = again.recall("where is the office", depth="shallow")
    assert hits and hits[0].record.content == "The office moved to Oslo"
    asyncio.run(storage.aclose())
    assert asyncio.run(storage.asearch(hash_embedder(["office Oslo"])[0], limit=1))


def _first_save(url: str, ns: str, dim: int, barrier: Any, results: Any) -> None:
    try:
        storage = BotWireStorage(ns, url=url)  # opened in the child, as a forked worker does
        barrier.wait(timeout=60)
        storage.save([rec(f"r{dim}-{i}", [1.0] * dim) for i in range(3)])
        results.put((dim, "saved"))
    except EmbeddingDimensionMismatchError:
        results.put((dim, "refused"))
    except BaseException as exc:  # reported, so the parent's assertion says what happened
        results.put((dim, f"{type(exc).__name__}: {exc}"))


def test_racing_first_saves_with_different_embedders_leave_one_dimension(
    memory_url: str, ns: str
) -> None:
    # Four forked workers, each with another embedding size, make the namespace's first save at
    # once: the size key is checked in each save's transaction, so exactly one size wins.
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(3):
        space = f"{ns}-{round_}"
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_first_save, args=(memory_url, space, dim, barrier, results))
            for dim in (2, 3, 4, 5)
        ]
        try:
            for p in procs:
                p.start()
            outcomes = dict(results.get(timeout=120) for _ in procs)
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
                    p.join()
        assert sorted(outcomes.values()) == ["refused", "refused", "refused", "saved"], outcomes
        (winner,) = [dim for dim, what in outcomes.items() if what == "saved"]
        storage = BotWireStorage(space, url=memory_url)
        assert {len(r.embedding or []) for r in storage.list_records()} == {winner}
        assert len(storage.search([1.0] * winner)) == 3
        storage.close()
