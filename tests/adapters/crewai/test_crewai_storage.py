"""BotWireStorage: CrewAI's StorageBackend protocol, directly and under crewai.memory.Memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from crewai import Agent, Crew, Task
from crewai.memory import Memory as CrewMemory
from crewai.memory import MemoryRecord
from crewai.memory.storage.backend import EmbeddingDimensionMismatchError, StorageBackend
from crewai.memory.storage.factory import set_memory_storage_factory
from crewai_helpers import FINAL, ScriptedLLM, hash_embedder

from botwire import Memory
from botwire_crewai import BotWireStorage, use_botwire_storage

T0 = datetime(2026, 1, 1, 12, 0, 0)


def rec(
    rid: str,
    content: str,
    *,
    scope: str = "/",
    cats: list[str] | None = None,
    vec: list[float] | None = None,
    minutes: int = 0,
    **meta: object,
) -> MemoryRecord:
    at = T0 + timedelta(minutes=minutes)
    return MemoryRecord(
        id=rid,
        content=content,
        scope=scope,
        categories=cats or [],
        metadata=dict(meta),
        embedding=vec,
        created_at=at,
        last_accessed=at,
    )


@pytest.fixture
def storage(memory_url: str, ns: str) -> Iterator[BotWireStorage]:
    s = BotWireStorage(ns, url=memory_url)
    yield s
    s.close()


@pytest.fixture
def filled(storage: BotWireStorage) -> BotWireStorage:
    storage.save(
        [
            rec("a", "alpha", scope="/team/research", cats=["x"], vec=[1.0, 0.0], minutes=1, k=1),
            rec("b", "beta", scope="/team/research/deep", cats=["y"], vec=[0.6, 0.8], minutes=2),
            rec("c", "gamma", scope="/team/ops", cats=["x", "y"], vec=[0.0, 1.0], minutes=3, k=2),
            rec("d", "delta", scope="/teamwork", vec=[-1.0, 0.0], minutes=4),
            rec("e", "no vector", scope="/", minutes=5),
        ]
    )
    return storage


def test_satisfies_crewai_protocol(storage: BotWireStorage) -> None:
    assert isinstance(storage, StorageBackend)
    assert repr(storage) == f"BotWireStorage(namespace={storage.namespace!r})"


def test_records_round_trip_with_embedding(filled: BotWireStorage, memory_url: str) -> None:
    again = BotWireStorage(filled.namespace, url=memory_url)  # another client, same data
    got = again.get_record("a")
    assert got is not None
    assert (got.content, got.scope, got.categories, got.metadata) == (
        "alpha",
        "/team/research",
        ["x"],
        {"k": 1},
    )
    assert got.embedding == [1.0, 0.0] and got.created_at == T0 + timedelta(minutes=1)
    assert again.get_record("zzz") is None
    assert again.count() == 5
    again.close()


def test_list_records_newest_first_and_paged(filled: BotWireStorage) -> None:
    assert [r.id for r in filled.list_records()] == ["e", "d", "c", "b", "a"]
    assert [r.id for r in filled.list_records(limit=2, offset=1)] == ["d", "c"]
    assert [r.id for r in filled.list_records(scope_prefix="/team")] == ["c", "b", "a"]
    assert filled.list_records(limit=0) == []


def test_scopes_categories_counts(filled: BotWireStorage) -> None:
    # Scope prefixes match whole path segments: "/team" does not include "/teamwork".
    assert filled.count("/team") == 3
    assert filled.count("team/research/") == 2
    assert filled.list_scopes("/") == ["/team", "/teamwork"]
    assert filled.list_scopes("/team") == ["/team/ops", "/team/research"]
    assert filled.list_categories() == {"x": 2, "y": 2}
    assert filled.list_categories("/team/research") == {"x": 1, "y": 1}
    info = filled.get_scope_info("/team")
    assert (info.path, info.record_count, info.categories) == ("/team", 3, ["x", "y"])
    assert info.child_scopes == ["/team/ops", "/team/research"]
    assert info.oldest_record == T0 + timedelta(minutes=1)
    assert info.newest_record == T0 + timedelta(minutes=3)
    assert filled.get_scope_info("/nothing").record_count == 0


def test_search_is_exact_cosine(filled: BotWireStorage) -> None:
    hits = filled.search([1.0, 0.0])
    # "e" has no embedding; "c" (orthogonal) and "d" (opposite) both score 0, newest first
    assert [r.id for r, _ in hits] == ["a", "b", "d", "c"]
    assert [round(s, 6) for _, s in hits] == [1.0, 0.6, 0.0, 0.0]
    assert [r.id for r, _ in filled.search([1.0, 0.0], limit=2)] == ["a", "b"]
    assert [r.id for r, _ in filled.search([1.0, 0.0], min_score=0.5)] == ["a", "b"]
    assert [r.id for r, _ in filled.search([0.0, 1.0], scope_prefix="/team/research")] == ["b", "a"]
    assert [r.id for r, _ in filled.search([0.0, 1.0], categories=["x"])] == ["c", "a"]
    assert [r.id for r, _ in filled.search([0.0, 1.0], metadata_filter={"k": 1})] == ["a"]
    with pytest.raises(EmbeddingDimensionMismatchError):
        filled.search([1.0, 0.0, 0.0])


def test_an_aware_cutoff_deletes_only_older_records(filled: BotWireStorage) -> None:
    """CrewAI stamps records with naive UTC times (``utcnow()``); a cutoff with a timezone
    (``datetime.now(timezone.utc) - ...``, what a user writes) used to match every record, so
    ``forget(older_than=...)`` deleted them all. Naive means UTC, as in LanceDBStorage."""
    from datetime import timezone

    plus_two = timezone(timedelta(hours=2))
    cutoff = (T0 + timedelta(minutes=2)).replace(tzinfo=timezone.utc).astimezone(plus_two)
    assert filled.delete(older_than=cutoff) == 1  # "a" (minute 1) only, whatever the zone
    assert sorted(r.id for r in filled.list_records()) == ["b", "c", "d", "e"]


def test_update_touch_delete_reset(filled: BotWireStorage, memory_url: str) -> None:
    a = filled.get_record("a")
    assert a is not None
    filled.update(a.model_copy(update={"content": "alpha v2", "embedding": [1.0, 0.0]}))
    assert filled.get_record("a").content == "alpha v2"  # type: ignore[union-attr]
    filled.touch_records(["a"])
    assert filled.get_record("a").last_accessed > datetime.utcnow() - timedelta(minutes=1)  # type: ignore[union-attr]

    assert filled.delete(categories=["y"], scope_prefix="/team/research") == 1  # "b"
    assert filled.delete(record_ids=["zzz"]) == 0
    assert filled.delete(older_than=T0 + timedelta(minutes=2)) == 1  # "a"
    assert filled.delete(metadata_filter={"k": 2}) == 1  # "c"
    assert sorted(r.id for r in filled.list_records()) == ["d", "e"]

    other = Memory(filled.namespace, url=memory_url)
    other.set("unrelated", 1)
    filled.reset("/teamwork")
    assert [r.id for r in filled.list_records()] == ["e"]
    filled.reset()
    assert filled.count() == 0
    assert other.list() == ["unrelated"]  # reset touches only CrewAI's keys
    other.close()


def test_async_methods(filled: BotWireStorage) -> None:
    async def scenario() -> tuple[list[str], int, int]:
        await filled.asave([rec("f", "phi", vec=[1.0, 0.0], minutes=9)])
        hits = await filled.asearch([1.0, 0.0], limit=2)
        deleted = await filled.adelete(record_ids=["f", "a"])
        return [r.id for r, _ in hits], deleted, filled.count()

    ids, deleted, left = asyncio.run(scenario())
    assert ids == ["f", "a"]  # equal scores: newest first
    assert (deleted, left) == (2, 4)


def test_crewai_memory_remembers_and_recalls_through_botwire(
    storage: BotWireStorage, memory_url: str
) -> None:
    llm = ScriptedLLM(model="scripted")
    mem = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)
    mem.remember(
        "The client prefers solar panels from Norway",
        scope="/clients/acme",
        categories=["preferences"],
        importance=0.9,
    )
    mem.remember(
        "Quarterly revenue grew by ten percent",
        scope="/finance",
        categories=["numbers"],
        importance=0.4,
    )
    mem.drain_writes()
    assert storage.count() == 2

    fresh = CrewMemory(
        storage=BotWireStorage(storage.namespace, url=memory_url), embedder=hash_embedder, llm=llm
    )
    matches = fresh.recall("which solar panels does the client prefer", depth="shallow")
    assert matches and matches[0].record.content == "The client prefers solar panels from Norway"
    assert fresh.list_scopes("/") == ["/clients", "/finance"]
    assert fresh.forget(scope="/finance") == 1
    assert storage.count() == 1


def test_crew_saves_task_output_into_botwire(storage: BotWireStorage) -> None:
    llm = ScriptedLLM(model="scripted", responses=[FINAL.format("Perovskite cells hit 30%.")])
    crew_memory = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)
    agent = Agent(role="Researcher", goal="Research", backstory="Careful.", llm=llm)
    task = Task(description="Summarize solar research.", expected_output="one line", agent=agent)
    result = Crew(agents=[agent], tasks=[task], memory=crew_memory).kickoff()
    crew_memory.drain_writes()
    assert result.raw == "Perovskite cells hit 30%."
    contents = [r.content for r in storage.list_records()]
    assert any("Perovskite cells hit 30%" in c for c in contents), contents


def test_use_botwire_storage_routes_memory_true(memory_url: str, ns: str) -> None:
    shared = use_botwire_storage(ns, url=memory_url)
    try:
        llm = ScriptedLLM(model="scripted")
        agent = Agent(role="R", goal="g", backstory="b", llm=llm, memory=True)
        assert isinstance(agent.memory, CrewMemory)
        assert agent.memory._storage is shared
        assert CrewMemory(storage="/some/path", llm=llm)._storage is not shared
    finally:
        set_memory_storage_factory(None)
        shared.close()
