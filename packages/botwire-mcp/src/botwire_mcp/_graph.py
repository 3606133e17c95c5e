"""The reference ``@modelcontextprotocol/server-memory`` knowledge graph, stored in botwire.

Same operations and results as the reference server's ``KnowledgeGraphManager``, but the graph
lives in a botwire namespace, so it survives cold starts and is shared by every client:

- an entity is one key ``graph/e/<name>`` holding ``{name, entityType, observations, seq}``;
- a relation is one key ``graph/r/<json [from, to, relationType]>`` holding the relation;
- ``seq`` (from the atomic counter ``graph/seq``) keeps the reference's creation order.

Writers never read-modify-write blindly: creations are ``set(if_absent=True)``, observation
changes are one atomic transaction checking the versions they read, retried on ``Conflict``, so
two agents adding observations to one entity at once both keep theirs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from botwire import AsyncMemory, Conflict

__all__ = ["ENTITY_PREFIX", "RELATION_PREFIX", "KnowledgeGraph", "entity_key", "relation_key"]

ENTITY_PREFIX = "graph/e/"
RELATION_PREFIX = "graph/r/"
SEQ_KEY = "graph/seq"
_ATTEMPTS = 200  # lost races before giving up; 4 writers x 25 calls need a handful each
_R = TypeVar("_R")  # what a _rewrite_entities change returns to its caller


def entity_key(name: str) -> str:
    return ENTITY_PREFIX + name


def relation_key(r: dict[str, str]) -> str:
    return RELATION_PREFIX + json.dumps([r["from"], r["to"], r["relationType"]], ensure_ascii=False)


def _entity(e: dict[str, Any]) -> dict[str, Any]:
    """The public shape (the reference's field order), without botwire's bookkeeping."""
    return {"name": e["name"], "entityType": e["entityType"], "observations": e["observations"]}


def _relation(r: dict[str, Any]) -> dict[str, str]:
    return {"from": r["from"], "to": r["to"], "relationType": r["relationType"]}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        a["from"] == b["from"] and a["to"] == b["to"] and a["relationType"] == b["relationType"]
    )


async def _backoff(attempt: int) -> None:
    import asyncio

    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


class KnowledgeGraph:
    """The nine graph operations over one ``AsyncMemory`` namespace."""

    def __init__(self, memory: AsyncMemory) -> None:
        self.memory = memory

    async def _reserve(self, n: int) -> int:
        """First of ``n`` consecutive creation numbers (atomic counter)."""
        end = await self.memory.incr(SEQ_KEY, n)
        return int(end) - n + 1

    async def create_entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the entities whose names are new; return those created."""
        seen: set[str] = set()
        batch = []
        for e in entities:
            if e["name"] not in seen:  # the reference skips duplicates within one call
                seen.add(e["name"])
                batch.append(e)
        if not batch:
            return []
        first = await self._reserve(len(batch))
        created = []
        for i, e in enumerate(batch):
            value = {**_entity(e), "observations": list(e["observations"]), "seq": first + i}
            try:
                await self.memory.set(entity_key(e["name"]), value, if_absent=True)
            except Conflict:
                continue  # exists already: not created, like the reference
            created.append(_entity(value))
        return created

    async def _missing(self, names: Iterable[str]) -> str | None:
        names = list(dict.fromkeys(names))
        found = await self.memory.get_many([entity_key(n) for n in names])
        return next((n for n in names if entity_key(n) not in found), None)

    async def create_relations(self, relations: list[dict[str, str]]) -> list[dict[str, str]]:
        """Create the relations that are new; both ends must exist (else nothing is created)."""
        ends = [n for r in relations for n in (r["from"], r["to"])]
        missing = await self._missing(ends)
        if missing is not None:
            raise ValueError(f"Entity with name {missing} not found")
        batch: list[dict[str, str]] = []
        for r in relations:
            if not any(_same(r, b) for b in batch):
                batch.append(_relation(r))
        if not batch:
            return []
        first = await self._reserve(len(batch))
        created = []
        for i, r in enumerate(batch):
            try:
                await self.memory.set(relation_key(r), {**r, "seq": first + i}, if_absent=True)
            except Conflict:
                continue
            created.append(r)
        return created

    async def _rewrite_entities(
        self,
        names: list[str],
        change: Callable[[dict[str, dict[str, Any]]], tuple[_R, set[str]]],
        *,
        strict: bool,
    ) -> _R:
        """Apply ``change(entities_by_name)`` and write every entity it touched in one atomic
        transaction that checks the versions read; retry from a fresh read on ``Conflict``."""
        keys = [entity_key(n) for n in dict.fromkeys(names)]
        for attempt in range(_ATTEMPTS):
            entries = await self.memory.entries(keys)
            entities = {e.value["name"]: dict(e.value) for e in entries.values()}
            if strict:
                for n in names:
                    if n not in entities:
                        raise ValueError(f"Entity with name {n} not found")
            result, changed = change(entities)
            if not changed:
                return result
            tx = self.memory.atomic()
            for name in changed:
                key = entity_key(name)
                tx.check(key, entries[key].version).set(key, entities[name])
            try:
                await tx.commit()
            except Conflict:
                await _backoff(attempt)
                continue
            return result
        raise Conflict(
            f"botwire-mcp: namespace {self.memory.namespace!r}: entities {names!r} kept changing "
            f"under {_ATTEMPTS} attempts; retry the call.",
            namespace=self.memory.namespace,
        )

    async def add_observations(self, observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def change(
            entities: dict[str, dict[str, Any]],
        ) -> tuple[list[dict[str, Any]], set[str]]:
            results: list[dict[str, Any]] = []
            changed: set[str] = set()
            for o in observations:
                entity = entities[o["entityName"]]
                current = list(entity["observations"])
                new = [c for c in o["contents"] if c not in current]
                if new:
                    entity["observations"] = current + new
                    changed.add(o["entityName"])
                results.append({"entityName": o["entityName"], "addedObservations": new})
            return results, changed

        names = [o["entityName"] for o in observations]
        return await self._rewrite_entities(names, change, strict=True)

    async def delete_observations(self, deletions: list[dict[str, Any]]) -> tuple[int, list[str]]:
        def change(entities: dict[str, dict[str, Any]]) -> tuple[tuple[int, list[str]], set[str]]:
            count = 0
            missing: list[str] = []
            changed: set[str] = set()
            for d in deletions:
                entity = entities.get(d["entityName"])
                if entity is None:
                    missing.append(d["entityName"])
                    continue
                before = entity["observations"]
                after = [o for o in before if o not in d["observations"]]
                if len(after) != len(before):
                    entity["observations"] = after
                    changed.add(d["entityName"])
                count += len(before) - len(after)
            return (count, missing), changed

        names = [d["entityName"] for d in deletions]
        return await self._rewrite_entities(names, change, strict=False)

    async def _relations(self) -> list[dict[str, Any]]:
        keys = await self.memory.list(RELATION_PREFIX)
        values = await self.memory.get_many(keys) if keys else {}
        return sorted(values.values(), key=lambda r: r.get("seq", 0))

    async def delete_entities(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Delete entities and every relation touching them; (deleted, not found)."""
        found = await self.memory.get_many([entity_key(n) for n in dict.fromkeys(names)])
        deleted = [n for n in names if entity_key(n) in found]
        not_found = [n for n in names if entity_key(n) not in found]
        doomed = set(names)
        rel_keys = [
            relation_key(r)
            for r in await self._relations()
            if r["from"] in doomed or r["to"] in doomed
        ]
        await self.memory.delete_many([entity_key(n) for n in dict.fromkeys(names)] + rel_keys)
        return deleted, not_found

    async def delete_relations(self, relations: list[dict[str, str]]) -> int:
        keys = list(dict.fromkeys(relation_key(r) for r in relations))
        return await self.memory.delete_many(keys) if keys else 0

    async def read_graph(self) -> dict[str, list[dict[str, Any]]]:
        keys = await self.memory.list(ENTITY_PREFIX)
        values = await self.memory.get_many(keys) if keys else {}
        entities = sorted(values.values(), key=lambda e: e.get("seq", 0))
        return {
            "entities": [_entity(e) for e in entities],
            "relations": [_relation(r) for r in await self._relations()],
        }

    async def search_nodes(self, query: str) -> dict[str, list[dict[str, Any]]]:
        graph = await self.read_graph()
        q = query.lower()
        entities = [
            e
            for e in graph["entities"]
            if q in e["name"].lower()
            or q in e["entityType"].lower()
            or any(q in o.lower() for o in e["observations"])
        ]
        return _with_relations(entities, graph["relations"])

    async def open_nodes(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        graph = await self.read_graph()
        wanted = set(names)
        return _with_relations(
            [e for e in graph["entities"] if e["name"] in wanted], graph["relations"]
        )


def _with_relations(
    entities: list[dict[str, Any]], relations: list[dict[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """The entities plus every relation with at least one end among them (the reference's rule)."""
    names = {e["name"] for e in entities}
    return {
        "entities": entities,
        "relations": [r for r in relations if r["from"] in names or r["to"] in names],
    }
