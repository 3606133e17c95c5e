"""Import a reference ``server-memory`` ``memory.jsonl`` file into a botwire namespace.

The file holds one JSON object per line: ``{"type": "entity", "name", "entityType",
"observations"}`` or ``{"type": "relation", "from", "to", "relationType"}``. Like the reference
server's loader, blank lines are ignored; unlike it, a malformed line is an error naming the
line number (an import should not silently drop memories). Importing twice adds nothing: an
existing entity only gains the observations it lacks, an existing relation is kept once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botwire import AsyncMemory, InvalidArgument

from ._graph import KnowledgeGraph

__all__ = ["ImportReport", "import_jsonl", "read_jsonl"]


@dataclass
class ImportReport:
    """What an import did: counts of entities and relations created, observations added."""

    entities: int = 0
    relations: int = 0
    observations: int = 0


def _require(record: dict[str, Any], fields: dict[str, type], where: str) -> None:
    for field, kind in fields.items():
        value = record.get(field)
        if kind is list:
            ok = isinstance(value, list) and all(isinstance(o, str) for o in value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise InvalidArgument(
                f"botwire-mcp import: {where}: field {field!r} must be a "
                f"{'list of strings' if kind is list else 'string'}; fix or remove the line."
            )


def read_jsonl(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Entities and relations of a ``memory.jsonl`` file, validated, in file order."""
    entities: list[dict[str, Any]] = []
    relations: list[dict[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(
                    f"botwire-mcp import: {where} is not JSON ({exc.msg}); fix or remove it."
                ) from None
            kind = record.get("type") if isinstance(record, dict) else None
            if kind == "entity":
                _require(record, {"name": str, "entityType": str, "observations": list}, where)
                entities.append(record)
            elif kind == "relation":
                _require(record, {"from": str, "to": str, "relationType": str}, where)
                relations.append(record)
            else:
                raise InvalidArgument(
                    f"botwire-mcp import: {where}: 'type' must be 'entity' or 'relation'."
                )
    return entities, relations


async def import_jsonl(path: str | Path, memory: AsyncMemory) -> ImportReport:
    """Import ``path`` into ``memory``'s namespace; the whole file is validated first."""
    entities, relations = read_jsonl(path)
    graph = KnowledgeGraph(memory)
    report = ImportReport()
    created = await graph.create_entities(entities)
    report.entities = len(created)
    fresh = {e["name"] for e in created}
    merge = [
        {"entityName": e["name"], "contents": e["observations"]}
        for e in entities
        if e["name"] not in fresh
    ]
    if merge:
        added = await graph.add_observations(merge)
        report.observations = sum(len(a["addedObservations"]) for a in added)
    if relations:
        report.relations = len(await graph.create_relations(relations))
    return report
