"""The reference ``@modelcontextprotocol/server-memory`` knowledge graph, stored in botwire.

Same operations and results as the reference server's ``KnowledgeGraphManager``, but the graph
lives in a botwire namespace, so it survives cold starts and is shared by every client:

- an entity is one key ``graph/e/<name>`` holding ``{name, entityType, observations, seq}``;
- a relation is one key ``graph/r/<json [from, to, relationType]>`` holding the relation;
- ``seq`` (from the atomic counter ``graph/seq``) keeps the reference's creation order.

Writers never read-modify-write blindly: every write is an atomic transaction that checks what
it read (an entity's version, a key's absence) and is retried from a fresh read on
``Conflict``. So two agents adding observations to one entity both keep theirs, and a relation
is only created while both its ends exist: ``delete_entities`` deletes the entities first and
then the relations it lists, so a relation racing the deletion of an end never survives it.

The key is the identity of an entity or relation (the writers address keys); the graph's keys
are also plain keys any client of the namespace may overwrite. A stored value of the wrong shape
is skipped by the readers with a logged warning naming it, and refused by the writers with an
error naming the key and the fix, so one stray ``memory_set`` cannot take the graph down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from botwire import AsyncMemory, Conflict, InvalidArgument, InvalidKey
from botwire._names import MAX_KEY_BYTES, check_key

__all__ = ["ENTITY_PREFIX", "RELATION_PREFIX", "KnowledgeGraph", "entity_key", "relation_key"]

ENTITY_PREFIX = "graph/e/"
RELATION_PREFIX = "graph/r/"
SEQ_KEY = "graph/seq"
_ATTEMPTS = 200  # lost races before giving up; 4 writers x 25 calls need a handful each
# Creations per atomic transaction: an entity is 2 ops (check absent, set), a relation at most
# 4 (its key's check and set, its two ends' checks); one transaction takes 1000 ops.
_ENTITY_CHUNK = 500
_RELATION_CHUNK = 250
_R = TypeVar("_R")  # what a _rewrite_entities change returns to its caller

log = logging.getLogger("botwire_mcp.graph")


def entity_key(name: str) -> str:
    return ENTITY_PREFIX + name


def relation_key(r: dict[str, str]) -> str:
    return RELATION_PREFIX + json.dumps([r["from"], r["to"], r["relationType"]], ensure_ascii=False)


def _entity(e: dict[str, Any]) -> dict[str, Any]:
    """The public shape (the reference's field order), without botwire's bookkeeping."""
    return {"name": e["name"], "entityType": e["entityType"], "observations": e["observations"]}


def _relation(r: dict[str, Any]) -> dict[str, str]:
    return {"from": r["from"], "to": r["to"], "relationType": r["relationType"]}


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _storable(key: str) -> bool:
    """Whether ``key`` is a legal botwire key (a name whose key is not can exist nowhere)."""
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True


def _seq(value: dict[str, Any]) -> float:
    seq = value.get("seq")
    return seq if isinstance(seq, (int, float)) and not isinstance(seq, bool) else 0


class Malformed(Exception):
    """A graph key holds a value that is not an entity / relation (``reason`` says why)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _load_entity(key: str, value: Any) -> dict[str, Any]:
    """The entity stored at ``key``, named by its key; :class:`Malformed` if it is not one."""
    if not isinstance(value, dict):
        raise Malformed(key, f"it holds a {type(value).__name__}, not an entity object")
    if not isinstance(value.get("entityType"), str):
        raise Malformed(key, "its 'entityType' is missing or not a string")
    observations = value.get("observations")
    if not isinstance(observations, list) or not all(isinstance(o, str) for o in observations):
        raise Malformed(key, "its 'observations' is not a list of strings")
    return {
        "name": key[len(ENTITY_PREFIX) :],  # the key is the identity: a stored 'name' is ignored
        "entityType": value["entityType"],
        "observations": list(observations),
        "seq": _seq(value),
    }


def _relation_ends(key: str) -> list[str] | None:
    """[from, to, relationType] of a relation key; None if it is not one."""
    try:
        ends = json.loads(key[len(RELATION_PREFIX) :])
    except ValueError:
        return None
    if isinstance(ends, list) and len(ends) == 3 and all(isinstance(s, str) for s in ends):
        return ends
    return None


def _load_relation(key: str, value: Any) -> dict[str, Any]:
    """The relation stored at ``key``, as its key says; :class:`Malformed` if it is not one."""
    ends = _relation_ends(key)
    if ends is None:
        raise Malformed(key, "the key is not 'graph/r/' + JSON [from, to, relationType]")
    if not isinstance(value, dict):
        raise Malformed(key, f"it holds a {type(value).__name__}, not a relation object")
    return {"from": ends[0], "to": ends[1], "relationType": ends[2], "seq": _seq(value)}


class KnowledgeGraph:
    """The nine graph operations over one ``AsyncMemory`` namespace."""

    def __init__(self, memory: AsyncMemory) -> None:
        self.memory = memory

    # -- shape checks --------------------------------------------------------------------

    def _refuse(self, bad: Malformed) -> InvalidArgument:
        """The error a writer raises on a malformed graph value: what, where, and the fix."""
        ns = self.memory.namespace
        return InvalidArgument(
            f"botwire-mcp: key {bad.key!r} in namespace {ns!r} is not a valid knowledge-graph "
            f"value ({bad.reason}), so this call changed nothing. Delete it (memory_delete, or "
            "delete_entities / delete_relations for its name) or store a valid value there.",
            namespace=ns,
            key=bad.key,
        )

    def _skip(self, bad: Malformed) -> None:
        log.warning(
            "botwire-mcp: skipping key %r in namespace %r: not a valid knowledge-graph value "
            "(%s); delete it or store a valid value there",
            bad.key,
            self.memory.namespace,
            bad.reason,
        )

    def _entity_key_checked(self, name: str) -> str:
        return self._fits(
            entity_key(name),
            f"entity name {_short(name)} is too long: it is stored under the key 'graph/e/<name>'",
            f" (names at most {MAX_KEY_BYTES - len(ENTITY_PREFIX)}). Nothing was created; use a "
            "shorter name.",
        )

    def _relation_key_checked(self, r: dict[str, str]) -> str:
        return self._fits(
            relation_key(r),
            f"relation {_short(r['from'])} -> {_short(r['to'])} ({_short(r['relationType'])}) "
            "is too long to store: its key is 'graph/r/' + JSON [from, to, relationType]",
            ". Nothing was created; use shorter entity names or relation type.",
        )

    def _fits(self, key: str, what: str, fix: str) -> str:
        """``key`` checked against botwire's key rules before anything is written, its size
        named in terms of what the caller gave (a name, a relation)."""
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise InvalidKey(
                f"botwire-mcp: {what}, here {size} UTF-8 bytes, and botwire keys take at most "
                f"{MAX_KEY_BYTES}{fix}",
                namespace=self.memory.namespace,
            )
        return check_key(key, self.memory.namespace)

    # -- creation ------------------------------------------------------------------------

    async def _reserve(self, n: int) -> int:
        """First of ``n`` consecutive creation numbers (atomic counter)."""
        end = await self.memory.incr(SEQ_KEY, n)
        return int(end) - n + 1

    async def _commit(self, tx: Any, attempt: int) -> bool:
        """Commit ``tx``; False (after a backoff) if one of its checks failed."""
        try:
            await tx.commit()
        except Conflict:
            await _backoff(attempt)
            return False
        return True

    def _gave_up(self, what: str) -> Conflict:
        return Conflict(
            f"botwire-mcp: namespace {self.memory.namespace!r}: {what} kept changing under "
            f"{_ATTEMPTS} attempts; retry the call.",
            namespace=self.memory.namespace,
        )

    async def create_entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the entities whose names are new; return those created.

        Every name is checked before anything is written, and each group of up to 500 is one
        atomic transaction: a failing call writes nothing (in a call of at most 500)."""
        batch: dict[str, dict[str, Any]] = {}
        for e in entities:  # the reference skips duplicates within one call
            batch.setdefault(self._entity_key_checked(e["name"]), e)
        keys = list(batch)
        created: list[dict[str, Any]] = []
        for start in range(0, len(keys), _ENTITY_CHUNK):
            chunk = keys[start : start + _ENTITY_CHUNK]
            for attempt in range(_ATTEMPTS):
                found = await self.memory.entries(chunk)
                for key in chunk:
                    if key in found:  # an existing entity is not re-created; a stray value
                        try:  # there must not pass for one
                            _load_entity(key, found[key].value)
                        except Malformed as bad:
                            raise self._refuse(bad) from None
                new = [k for k in chunk if k not in found]
                if not new:
                    break
                first = await self._reserve(len(new))
                tx = self.memory.atomic()
                values = []
                for i, key in enumerate(new):
                    e = batch[key]
                    value = {**_entity(e), "observations": list(e["observations"])}
                    value["seq"] = first + i
                    tx.check(key, None).set(key, value)
                    values.append(value)
                if await self._commit(tx, attempt):
                    created += [_entity(v) for v in values]
                    break
            else:
                raise self._gave_up("the entities being created")
        return created

    async def _read_relations(self, rels: dict[str, dict[str, str]]) -> dict[str, Any]:
        """The stored entries of ``rels``' ends and keys (one read)."""
        keys = [entity_key(n) for n in _ends(rels.values())] + list(rels)
        return await self.memory.entries([k for k in keys if _storable(k)])

    def _check_relations(self, rels: dict[str, dict[str, str]], found: dict[str, Any]) -> None:
        """Refuse ``rels`` (read as ``found``) if an end is missing (the reference's error),
        a key is too long, or an end or existing relation is not a valid graph value."""
        for name in _ends(rels.values()):
            key = entity_key(name)
            if key not in found:
                raise ValueError(f"Entity with name {name} not found")
            try:
                _load_entity(key, found[key].value)
            except Malformed as bad:
                raise self._refuse(bad) from None
        for key, r in rels.items():
            self._relation_key_checked(r)
            if key in found:
                try:
                    _load_relation(key, found[key].value)
                except Malformed as bad:
                    raise self._refuse(bad) from None

    async def create_relations(self, relations: list[dict[str, str]]) -> list[dict[str, str]]:
        """Create the relations that are new; both ends must exist (else nothing is created).

        Each group of up to 250 relations is one atomic transaction that checks both ends of
        each at the versions read, so a relation is never created after an end was deleted."""
        batch: dict[str, dict[str, str]] = {}
        for r in relations:  # the reference skips duplicates within one call
            batch.setdefault(relation_key(r), _relation(r))
        keys = list(batch)
        if len(keys) > _RELATION_CHUNK:  # several transactions: check all before the first
            self._check_relations(batch, await self._read_relations(batch))
        created: list[dict[str, str]] = []
        for start in range(0, len(keys), _RELATION_CHUNK):
            chunk = {k: batch[k] for k in keys[start : start + _RELATION_CHUNK]}
            for attempt in range(_ATTEMPTS):
                found = await self._read_relations(chunk)
                self._check_relations(chunk, found)  # an end may have gone since: not found
                new = [k for k in chunk if k not in found]
                if not new:
                    break
                first = await self._reserve(len(new))
                tx = self.memory.atomic()
                for name in _ends(chunk[k] for k in new):
                    tx.check(entity_key(name), found[entity_key(name)].version)
                for i, key in enumerate(new):
                    tx.check(key, None).set(key, {**chunk[key], "seq": first + i})
                if await self._commit(tx, attempt):
                    created += [chunk[k] for k in new]
                    break
            else:
                raise self._gave_up("the relations being created and their entities")
        return created

    # -- observations --------------------------------------------------------------------

    async def _rewrite_entities(
        self,
        names: list[str],
        change: Callable[[dict[str, dict[str, Any]]], tuple[_R, set[str]]],
        *,
        strict: bool,
    ) -> _R:
        """Apply ``change(entities_by_name)`` and write every entity it touched in one atomic
        transaction that checks the versions read; retry from a fresh read on ``Conflict``."""
        keys = [k for k in (entity_key(n) for n in dict.fromkeys(names)) if _storable(k)]
        for attempt in range(_ATTEMPTS):
            entries = await self.memory.entries(keys)
            try:
                entities = {
                    k[len(ENTITY_PREFIX) :]: _load_entity(k, entries[k].value) for k in entries
                }
            except Malformed as bad:
                raise self._refuse(bad) from None
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
            if await self._commit(tx, attempt):
                return result
        raise self._gave_up(f"entities {names!r}")

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

    # -- deletion ------------------------------------------------------------------------

    async def _delete_keys(self, keys: Iterable[str]) -> set[str]:
        """Delete ``keys``; those that existed."""
        keys = [k for k in dict.fromkeys(keys) if _storable(k)]
        existed: set[str] = set()
        for start in range(0, len(keys), 1000):  # one transaction takes 1000 ops
            chunk = keys[start : start + 1000]
            tx = self.memory.atomic()
            for key in chunk:
                tx.delete(key)
            outcomes = await tx.commit()
            existed.update(k for k, deleted in zip(chunk, outcomes, strict=True) if deleted)
        return existed

    async def delete_entities(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Delete entities and every relation touching them; (deleted, not found).

        The entities go first, then the relations listed afterwards: a relation created
        concurrently either committed before (and is listed here) or checked its ends after
        (and failed), so none is left pointing at a deleted entity."""
        existed = await self._delete_keys(entity_key(n) for n in names)
        doomed = set(names)
        rel_keys = []
        for key in await self.memory.list(RELATION_PREFIX):
            ends = _relation_ends(key)
            if ends is not None and (ends[0] in doomed or ends[1] in doomed):
                rel_keys.append(key)
        await self._delete_keys(rel_keys)
        deleted = [n for n in names if entity_key(n) in existed]
        return deleted, [n for n in names if entity_key(n) not in existed]

    async def delete_relations(self, relations: list[dict[str, str]]) -> int:
        return len(await self._delete_keys(relation_key(r) for r in relations))

    # -- reading -------------------------------------------------------------------------

    async def _read(
        self, prefix: str, load: Callable[[str, Any], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Every well-formed value under ``prefix`` in creation order; others skipped, logged."""
        keys = await self.memory.list(prefix)
        values = await self.memory.get_many(keys) if keys else {}
        loaded = []
        for key, value in values.items():
            try:
                loaded.append(load(key, value))
            except Malformed as bad:
                self._skip(bad)
        return sorted(loaded, key=lambda v: v["seq"])

    async def read_graph(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "entities": [_entity(e) for e in await self._read(ENTITY_PREFIX, _load_entity)],
            "relations": [_relation(r) for r in await self._read(RELATION_PREFIX, _load_relation)],
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


def _ends(relations: Iterable[dict[str, str]]) -> list[str]:
    """The names at either end of ``relations``, each once, in order."""
    return list(dict.fromkeys(n for r in relations for n in (r["from"], r["to"])))


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


def _with_relations(
    entities: list[dict[str, Any]], relations: list[dict[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """The entities plus every relation with at least one end among them (the reference's rule)."""
    names = {e["name"] for e in entities}
    return {
        "entities": entities,
        "relations": [r for r in relations if r["from"] in names or r["to"] in names],
    }
