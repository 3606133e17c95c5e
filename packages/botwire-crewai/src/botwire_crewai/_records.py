"""Pure helpers for CrewAI memory records: encoding, filtering, scoring.

No I/O happens here; :mod:`botwire_crewai._storage` fetches and writes, this module decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from crewai.memory.storage.backend import EmbeddingDimensionMismatchError
from crewai.memory.types import MemoryRecord, ScopeInfo

__all__ = [
    "ACCESSED_PREFIX",
    "DIM_KEY",
    "RECORD_PREFIX",
    "accessed_key",
    "batch_dim",
    "child_scopes",
    "cosine",
    "decode_record",
    "dim_mismatch",
    "encode_record",
    "in_scope",
    "matches",
    "newest_first",
    "normalize_scope",
    "rank",
    "record_key",
    "scope_info",
]

RECORD_PREFIX = "crewai/record/"
"""Key prefix of one record: ``crewai/record/<id>`` holds the whole record (with its embedding)."""

ACCESSED_PREFIX = "crewai/accessed/"
"""Key prefix of a record's last-access time, written blindly by ``touch_records``."""


DIM_KEY = "crewai/embedding-dim"
"""The dimension of every embedding stored in the namespace, set by the first save that has one
(as LanceDB fixes its table's vector size): a save of another size is refused up front."""


def dim_mismatch(stored: int, new: int, namespace: str) -> EmbeddingDimensionMismatchError:
    """CrewAI's own error (so CrewAI's handling applies), naming the namespace and the way out."""
    exc = EmbeddingDimensionMismatchError(stored, new)
    exc.args = (
        f"{exc}\n\nbotwire namespace {namespace!r} holds {stored}-dimensional embeddings (key "
        f"{DIM_KEY!r}); nothing was written. Use the embedder that wrote them, another "
        "namespace, or BotWireStorage.reset() to delete the records and start over.",
    )
    return exc


def batch_dim(records: Iterable[MemoryRecord], namespace: str) -> int | None:
    """The one embedding dimension of ``records`` (``None`` when none has an embedding);
    refuses a batch that mixes sizes, before anything is written."""
    dim: int | None = None
    for record in records:
        if record.embedding:
            if dim is None:
                dim = len(record.embedding)
            elif len(record.embedding) != dim:
                raise dim_mismatch(dim, len(record.embedding), namespace)
    return dim


def record_key(record_id: str) -> str:
    """The botwire key that holds the record ``record_id``."""
    return RECORD_PREFIX + record_id


def accessed_key(record_id: str) -> str:
    """The botwire key that holds the last-access time of ``record_id``."""
    return ACCESSED_PREFIX + record_id


def encode_record(record: MemoryRecord) -> dict[str, Any]:
    """A JSON-ready dict of ``record``, embedding included (CrewAI excludes it from dumps)."""
    data: dict[str, Any] = record.model_dump(mode="json")
    data["embedding"] = list(record.embedding) if record.embedding is not None else None
    return data


def decode_record(data: dict[str, Any], accessed: str | None = None) -> MemoryRecord:
    """Rebuild a :class:`MemoryRecord`; ``accessed`` (ISO time) wins if newer than stored."""
    record = MemoryRecord.model_validate(data)
    if accessed:
        seen = datetime.fromisoformat(accessed)
        if _utc(seen) > _utc(record.last_accessed):
            record.last_accessed = seen
    return record


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time, so naive and aware times compare: a naive one is UTC,
    as CrewAI stamps records (``datetime.utcnow()``). Skipping the comparison of a naive
    record with an aware cutoff counted every record as older than it: ``forget(older_than=``
    an aware time ``)`` deleted them all."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def normalize_scope(scope: str | None) -> str:
    """``"a/b/"`` → ``"/a/b"``; ``None``, ``""`` and ``"/"`` → ``"/"``."""
    inner = (scope or "").strip("/")
    return "/" + inner if inner else "/"


def in_scope(record_scope: str, scope_prefix: str | None) -> bool:
    """Whether ``record_scope`` is ``scope_prefix`` or lies below it (path-wise, not by string)."""
    prefix = normalize_scope(scope_prefix)
    if prefix == "/":
        return True
    scope = normalize_scope(record_scope)
    return scope == prefix or scope.startswith(prefix + "/")


def matches(
    record: MemoryRecord,
    *,
    scope_prefix: str | None = None,
    categories: Sequence[str] | None = None,
    metadata_filter: dict[str, Any] | None = None,
    record_ids: Iterable[str] | None = None,
    older_than: datetime | None = None,
) -> bool:
    """Whether ``record`` satisfies every given criterion (criteria left as ``None`` match all).

    ``categories`` matches a record that has *any* of them; ``metadata_filter`` needs every
    key to be equal — the same rules as CrewAI's built-in LanceDB storage.
    """
    if record_ids is not None and record.id not in set(record_ids):
        return False
    if not in_scope(record.scope, scope_prefix):
        return False
    if categories and not any(c in record.categories for c in categories):
        return False
    if metadata_filter and not all(record.metadata.get(k) == v for k, v in metadata_filter.items()):
        return False
    return older_than is None or _utc(record.created_at) < _utc(older_than)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two equally long vectors; 0.0 when either is all zeros."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def rank(
    records: Iterable[MemoryRecord],
    query_embedding: Sequence[float],
    *,
    limit: int,
    min_score: float,
) -> list[tuple[MemoryRecord, float]]:
    """Exact nearest neighbours: every record with an embedding, scored by cosine similarity.

    The score is the cosine similarity clamped to ``[0, 1]`` (opposite vectors score 0), which
    keeps CrewAI's composite score (semantic + recency + importance) in its expected range.

    Raises:
        EmbeddingDimensionMismatchError: a stored embedding has another dimension than the
            query — the memory was written with a different embedder.
    """
    scored: list[tuple[MemoryRecord, float]] = []
    for record in records:
        if not record.embedding:
            continue
        if len(record.embedding) != len(query_embedding):
            raise EmbeddingDimensionMismatchError(len(record.embedding), len(query_embedding))
        score = max(0.0, min(1.0, cosine(query_embedding, record.embedding)))
        if score >= min_score:
            scored.append((record, score))
    scored.sort(key=lambda pair: (pair[1], _utc(pair[0].created_at)), reverse=True)
    return scored[: max(limit, 0)]


def newest_first(records: Iterable[MemoryRecord]) -> list[MemoryRecord]:
    """Records sorted by ``created_at``, newest first (ties broken by id for stable paging)."""
    return sorted(records, key=lambda r: (_utc(r.created_at), r.id), reverse=True)


def child_scopes(scopes: Iterable[str], parent: str | None) -> list[str]:
    """The immediate child scope paths of ``parent`` among ``scopes``, sorted."""
    base = normalize_scope(parent)
    prefix = "/" if base == "/" else base + "/"
    children: set[str] = set()
    for raw in scopes:
        scope = normalize_scope(raw)
        if scope.startswith(prefix) and scope != base:
            first = scope[len(prefix) :].split("/", 1)[0]
            if first:
                children.add(prefix + first)
    return sorted(children)


def scope_info(records: Sequence[MemoryRecord], scope: str) -> ScopeInfo:
    """Count, categories, date range and children of ``scope`` (records outside it are ignored)."""
    path = normalize_scope(scope)
    inside = [r for r in records if in_scope(r.scope, path)]
    if not inside:
        return ScopeInfo(path=path)
    dates = [r.created_at for r in inside]
    return ScopeInfo(
        path=path,
        record_count=len(inside),
        categories=sorted({c for r in inside for c in r.categories}),
        oldest_record=min(dates, key=lambda d: d.timestamp()),
        newest_record=max(dates, key=lambda d: d.timestamp()),
        child_scopes=child_scopes((r.scope for r in inside), path),
    )
