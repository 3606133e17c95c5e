"""``BotWireStorage``: CrewAI's ``StorageBackend`` protocol on a botwire namespace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from crewai.memory.types import MemoryRecord, ScopeInfo

from botwire import AsyncMemory, Conflict, Memory
from botwire_crewai import _records as rec

__all__ = ["BotWireStorage"]

_log = logging.getLogger("botwire_crewai")
_CHUNK = 100
_ATTEMPTS = 5  # a save retries when another process set or reset the dimension meanwhile


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _ids(keys: Sequence[str]) -> list[str]:
    return [k[len(rec.RECORD_PREFIX) :] for k in keys if k.startswith(rec.RECORD_PREFIX)]


def _decode_chunk(ids: Sequence[str], data: dict[str, Any]) -> list[MemoryRecord]:
    out: list[MemoryRecord] = []
    for record_id in ids:
        raw = data.get(rec.record_key(record_id))
        if raw is None:  # deleted between list and read
            continue
        accessed = data.get(rec.accessed_key(record_id))
        try:
            out.append(rec.decode_record(raw, accessed if isinstance(accessed, str) else None))
        except (ValueError, TypeError) as exc:
            _log.warning("skipping unreadable CrewAI memory record %r: %s", record_id, exc)
    return out


def _keys_for(ids: Sequence[str]) -> list[str]:
    return [rec.record_key(i) for i in ids] + [rec.accessed_key(i) for i in ids]


class BotWireStorage:
    """CrewAI memory storage (the ``StorageBackend`` protocol) kept in a botwire namespace.

    Each record lives under its own key (``crewai/record/<id>``, embedding included), so
    several processes can save into one namespace at once without losing a record, and a crew
    in a fresh process (the next serverless invocation) sees everything earlier ones saved.

    ``search`` is **exact** nearest-neighbour search: it reads every record of the namespace
    and ranks them by cosine similarity on the client. That is right for the small memories
    agents keep (hundreds to a few thousand records); it is not a vector database.

    Args:
        namespace: botwire namespace that holds the records.
        url: botwire URL (``sqlite:///path`` or ``https://host``); default ``BOTWIRE_URL``.
        token: bearer token for a botwire server; default ``BOTWIRE_TOKEN``.
        memory: an existing :class:`botwire.Memory` to use instead of ``namespace``/``url``.

    Example:
        >>> from crewai.memory import Memory as CrewMemory
        >>> from botwire_crewai import BotWireStorage
        >>> crew_memory = CrewMemory(storage=BotWireStorage("research-crew-memory"),
        ...                          embedder=my_embedder, llm=my_llm)  # doctest: +SKIP
        >>> crew = Crew(agents=[...], tasks=[...], memory=crew_memory)  # doctest: +SKIP
    """

    def __init__(
        self,
        namespace: str = "crewai-memory",
        *,
        url: str | None = None,
        token: str | None = None,
        memory: Memory | None = None,
    ) -> None:
        self._owned = memory is None
        self._url, self._token = url, token
        self._memory: Memory = (
            memory if memory is not None else Memory(namespace, url=url, token=token)
        )
        self._amemory: AsyncMemory | None = None
        self._closed = False

    @property
    def namespace(self) -> str:
        """The botwire namespace holding the records."""
        return self._memory.namespace

    @property
    def memory(self) -> Memory:
        """The underlying :class:`botwire.Memory` (reopened if :meth:`close` closed it)."""
        if self._closed:
            # CrewAI's Memory.close() closes its storage, yet the same Memory (and LanceDB's
            # storage, which has no close) keeps working: reopen rather than fail on next use.
            self._closed = False
            if self._owned:
                self._memory = Memory(self._memory.namespace, url=self._url, token=self._token)
        return self._memory

    def _async(self) -> AsyncMemory:
        if self._amemory is None:
            self._amemory = self.memory.as_async()
        return self._amemory

    def __repr__(self) -> str:
        return f"BotWireStorage(namespace={self.namespace!r})"

    # -- reading ---------------------------------------------------------------------------

    def _all(self) -> list[MemoryRecord]:
        ids = _ids(self.memory.list(prefix=rec.RECORD_PREFIX))
        out: list[MemoryRecord] = []
        for chunk in _chunks(ids):
            out.extend(_decode_chunk(chunk, self.memory.get_many(_keys_for(chunk))))
        return out

    async def _aall(self) -> list[MemoryRecord]:
        amem = self._async()
        ids = _ids(await amem.list(prefix=rec.RECORD_PREFIX))
        out: list[MemoryRecord] = []
        for chunk in _chunks(ids):
            out.extend(_decode_chunk(chunk, await amem.get_many(_keys_for(chunk))))
        return out

    def get_record(self, record_id: str) -> MemoryRecord | None:
        """The record with id ``record_id``, or ``None``."""
        return next(
            iter(_decode_chunk([record_id], self.memory.get_many(_keys_for([record_id])))), None
        )

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """Exact cosine-similarity search over the namespace's records (see the class doc)."""
        candidates = [
            r
            for r in self._all()
            if rec.matches(
                r, scope_prefix=scope_prefix, categories=categories, metadata_filter=metadata_filter
            )
        ]
        return rec.rank(candidates, query_embedding, limit=limit, min_score=min_score)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """Async :meth:`search` (native :class:`botwire.AsyncMemory` I/O)."""
        candidates = [
            r
            for r in await self._aall()
            if rec.matches(
                r, scope_prefix=scope_prefix, categories=categories, metadata_filter=metadata_filter
            )
        ]
        return rec.rank(candidates, query_embedding, limit=limit, min_score=min_score)

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records in a scope, newest first, paged by ``offset``/``limit``."""
        if limit <= 0 or offset < 0:
            return []
        inside = [r for r in self._all() if rec.in_scope(r.scope, scope_prefix)]
        return rec.newest_first(inside)[offset : offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        """Record count, categories, date range and child scopes of ``scope``."""
        return rec.scope_info(self._all(), scope)

    def list_scopes(self, parent: str = "/") -> list[str]:
        """Immediate child scopes of ``parent``."""
        return rec.child_scopes((r.scope for r in self._all()), parent)

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        """Category → number of records, within ``scope_prefix``."""
        counts: dict[str, int] = {}
        for r in self._all():
            if rec.in_scope(r.scope, scope_prefix):
                for c in r.categories:
                    counts[c] = counts.get(c, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        """Number of records in ``scope_prefix`` (and below); all records when ``None``."""
        if rec.normalize_scope(scope_prefix) == "/":
            return len(self.memory.list(prefix=rec.RECORD_PREFIX))
        return sum(1 for r in self._all() if rec.in_scope(r.scope, scope_prefix))

    # -- writing ---------------------------------------------------------------------------

    def _stored_dim(self, entry_value: Any, records: list[MemoryRecord]) -> int | None:
        """The namespace's dimension: its key, else (a namespace saved before the key existed)
        the first stored embedding's."""
        if isinstance(entry_value, int):
            return entry_value
        return next((len(r.embedding) for r in records if r.embedding), None)

    def _write(self, records: list[MemoryRecord]) -> None:
        """Store ``records`` in one atomic write, refusing up front an embedding whose size is
        not the namespace's (LanceDB's behaviour), so the memory stays searchable."""
        values = {rec.record_key(r.id): rec.encode_record(r) for r in records}
        dim = rec.batch_dim(records, self.namespace)
        if dim is None:
            self.memory.set_many(values)
            return
        for _ in range(_ATTEMPTS):
            entry = self.memory.entry(rec.DIM_KEY)
            stored = self._stored_dim(entry.value if entry else None, [] if entry else self._all())
            if stored is not None and stored != dim:
                raise rec.dim_mismatch(stored, dim, self.namespace)
            tx = self.memory.atomic()
            tx.check(rec.DIM_KEY, entry.version if entry else None)  # unchanged meanwhile
            if entry is None:
                tx.set(rec.DIM_KEY, dim)
            for key, value in values.items():
                tx.set(key, value)
            try:
                tx.commit()
                return
            except Conflict:  # another process set (or reset) the dimension: decide again
                continue
        raise Conflict(
            f"botwire: the embedding dimension of namespace {self.namespace!r} kept "
            "changing while saving CrewAI records; retry the save.",
            namespace=self.namespace,
            key=rec.DIM_KEY,
        )

    async def _awrite(self, records: list[MemoryRecord]) -> None:
        """Async :meth:`_write`."""
        amem = self._async()
        values = {rec.record_key(r.id): rec.encode_record(r) for r in records}
        dim = rec.batch_dim(records, self.namespace)
        if dim is None:
            await amem.set_many(values)
            return
        for _ in range(_ATTEMPTS):
            entry = await amem.entry(rec.DIM_KEY)
            stored = self._stored_dim(
                entry.value if entry else None, [] if entry else await self._aall()
            )
            if stored is not None and stored != dim:
                raise rec.dim_mismatch(stored, dim, self.namespace)
            tx = amem.atomic()
            tx.check(rec.DIM_KEY, entry.version if entry else None)
            if entry is None:
                tx.set(rec.DIM_KEY, dim)
            for key, value in values.items():
                tx.set(key, value)
            try:
                await tx.commit()
                return
            except Conflict:
                continue
        raise Conflict(
            f"botwire: the embedding dimension of namespace {self.namespace!r} kept "
            "changing while saving CrewAI records; retry the save.",
            namespace=self.namespace,
            key=rec.DIM_KEY,
        )

    def save(self, records: list[MemoryRecord]) -> None:
        """Store ``records`` (one key each) in one atomic write.

        Raises:
            EmbeddingDimensionMismatchError: an embedding's size differs from the others' or
                from the namespace's (set by the first save with an embedding); nothing is
                written.
        """
        if records:
            self._write(records)

    async def asave(self, records: list[MemoryRecord]) -> None:
        """Async :meth:`save`."""
        if records:
            await self._awrite(records)

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (creates it when absent); its embedding must
        have the namespace's size, as for :meth:`save`."""
        self._write([record])

    def touch_records(self, record_ids: list[str]) -> None:
        """Mark records as accessed now (a blind write of one small key per record)."""
        if record_ids:
            now = datetime.utcnow().isoformat()
            self.memory.set_many({rec.accessed_key(i): now for i in record_ids})

    def _matching_ids(
        self,
        records: list[MemoryRecord],
        scope_prefix: str | None,
        categories: list[str] | None,
        record_ids: list[str] | None,
        older_than: datetime | None,
        metadata_filter: dict[str, Any] | None,
    ) -> list[str]:
        return [
            r.id
            for r in records
            if rec.matches(
                r,
                scope_prefix=scope_prefix,
                categories=categories,
                metadata_filter=metadata_filter,
                record_ids=record_ids,
                older_than=older_than,
            )
        ]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Delete the records matching every given criterion; returns how many were deleted."""
        ids = self._matching_ids(
            self._all(), scope_prefix, categories, record_ids, older_than, metadata_filter
        )
        deleted = 0
        for chunk in _chunks(ids):
            deleted += self.memory.delete_many([rec.record_key(i) for i in chunk])
            self.memory.delete_many([rec.accessed_key(i) for i in chunk])
        return deleted

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Async :meth:`delete`."""
        amem = self._async()
        ids = self._matching_ids(
            await self._aall(), scope_prefix, categories, record_ids, older_than, metadata_filter
        )
        deleted = 0
        for chunk in _chunks(ids):
            deleted += await amem.delete_many([rec.record_key(i) for i in chunk])
            await amem.delete_many([rec.accessed_key(i) for i in chunk])
        return deleted

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every record in ``scope_prefix`` (all of them when ``None``).

        Only the CrewAI keys are removed; other keys in the namespace are left alone.
        """
        if rec.normalize_scope(scope_prefix) == "/":
            keys = self.memory.list(prefix=rec.RECORD_PREFIX)
            keys += self.memory.list(prefix=rec.ACCESSED_PREFIX)
            keys.append(rec.DIM_KEY)  # an empty memory takes any embedder again
            for chunk in _chunks(keys):
                self.memory.delete_many(chunk)
            return
        self.delete(scope_prefix=scope_prefix)

    def close(self) -> None:
        """Close the botwire clients this storage opened (CrewAI calls it on ``Memory.close``).

        The storage stays usable, as LanceDB's does after ``Memory.close()``: the next call
        reopens a client. Inside a running event loop use ``await storage.aclose()`` to also
        close the async client that ``asave``/``asearch``/``adelete`` opened.
        """
        if self._amemory is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # no loop running: safe to run the async close here
                asyncio.run(self.aclose())
        if self._owned and not self._closed:
            self._memory.close()
        self._closed = True

    async def aclose(self) -> None:
        """Close the async client opened by the ``a*`` methods, then the sync one if owned."""
        amemory, self._amemory = self._amemory, None
        if amemory is not None:
            await amemory.aclose()
        if self._owned and not self._closed:
            self._memory.close()
        self._closed = True
