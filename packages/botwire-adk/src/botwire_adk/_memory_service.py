"""``BotWireMemoryService``: ADK's ``BaseMemoryService`` on botwire, keyword search like ADK's
``InMemoryMemoryService`` (same tokenizer and scoring, at most ten results), but durable and
shared by every process.

Layout: ``mem/<app>/<user>/session/<sid>`` (a session's memorable events, replaced by
``add_session_to_memory``), ``mem/<app>/<user>/events/<sid>`` (``add_events_to_memory``, merged by
event id), ``mem/<app>/<user>/explicit`` (``add_memory``), ``mem/<app>/<user>/deleted`` (ids
``delete_memory`` removed, never re-ingested). A search reads one user's buckets: one listing
and one batched read, for small per-user memories (use a vector store beyond thousands).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from google.adk.events.event import Event
from google.adk.memory import _utils
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.in_memory_memory_service import (
    _extract_searchable_words,
    _extract_words_lower,
)
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session

from botwire import Conflict
from botwire.integration import chunks

from . import _common as k

__all__ = ["BotWireMemoryService"]

_MAX_RESULTS = 10
_UNKNOWN_SESSION = "__unknown_session_id__"


def _from_event(event: Event) -> dict[str, Any]:
    entry = MemoryEntry(
        id=event.id,
        content=event.content,  # type: ignore[arg-type]  # callers filter content-less events
        author=event.author,
        timestamp=_utils.format_timestamp(event.timestamp),
    )
    return entry.model_dump(mode="json", exclude_none=True)


def _memorable(events: Sequence[Event], deleted: set[str]) -> list[dict[str, Any]]:
    return [_from_event(e) for e in events if e.content and e.content.parts and e.id not in deleted]


class BotWireMemoryService(k.ClientService, BaseMemoryService):
    """ADK long-term memory in botwire (keyword search, like ``InMemoryMemoryService``).

    Same constructor as :class:`~botwire_adk.BotWireSessionService` (``namespace``, ``memory``,
    ``url``, ``token``, ``uri``).
    """

    async def _deleted(self, app: str, user: str) -> set[str]:
        return set(await self._mem.get(k.memory_prefix(app, user) + "deleted", []) or [])

    async def add_session_to_memory(self, session: Session) -> None:
        prefix = k.memory_prefix(session.app_name, session.user_id)
        deleted = await self._deleted(session.app_name, session.user_id)
        await self._mem.set(
            f"{prefix}session/{k.seg(session.id)}", _memorable(session.events, deleted)
        )

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        deleted = await self._deleted(app_name, user_id)
        bucket = (
            f"{k.memory_prefix(app_name, user_id)}events/{k.seg(session_id or _UNKNOWN_SESSION)}"
        )
        await self._merge(bucket, _memorable(events, deleted))

    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        items = []
        for m in memories:
            entry = m.model_copy(update={"id": m.id or str(uuid.uuid4())})
            if custom_metadata:
                entry.custom_metadata = {**dict(custom_metadata), **entry.custom_metadata}
            items.append(entry.model_dump(mode="json", exclude_none=True))
        await self._merge(k.memory_prefix(app_name, user_id) + "explicit", items)

    async def _merge(self, key: str, items: list[dict[str, Any]]) -> None:
        """Add ``items`` to the list at ``key`` unless their id is there (compare-and-set)."""
        if not items:
            return
        while True:
            entry = await self._mem.entry(key)
            current = list(entry.value) if entry is not None else []
            ids = {item.get("id") for item in current}
            new = current + [item for item in items if item.get("id") not in ids]
            try:
                if entry is None:
                    await self._mem.set(key, new, if_absent=True)
                else:
                    await self._mem.set(key, new, if_version=entry.version)
                return
            except Conflict:
                continue  # another writer added to this bucket: merge again

    async def _buckets(self, app: str, user: str) -> dict[str, Any]:
        prefix = k.memory_prefix(app, user)
        keys = [key for key in await self._mem.list(prefix) if key != prefix + "deleted"]
        out: dict[str, Any] = {}
        for part in chunks(keys):
            out.update({key: e for key, e in (await self._mem.entries(part)).items()})
        return out

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        words_in_query = _extract_words_lower(query)
        scored: list[tuple[int, MemoryEntry]] = []
        for entry in (await self._buckets(app_name, user_id)).values():
            for item in entry.value:
                memory = MemoryEntry.model_validate(item)
                text = " ".join(p.text for p in (memory.content.parts or []) if p.text)
                words = _extract_searchable_words(text)
                if not words:
                    continue
                lower = unicodedata.normalize("NFC", text).lower()
                matched = sum(
                    1 for w in words_in_query if w in words or (not w.isascii() and w in lower)
                )
                if matched:
                    scored.append((matched, memory))
        scored.sort(key=lambda s: -s[0])
        return SearchMemoryResponse(memories=[m for _, m in scored[:_MAX_RESULTS]])

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        if not memory_id:
            return
        # Recorded first, so a concurrent add_session_to_memory cannot bring it back later.
        await self._mem.append(k.memory_prefix(app_name, user_id) + "deleted", memory_id)
        for key, entry in (await self._buckets(app_name, user_id)).items():
            while entry is not None and any(i.get("id") == memory_id for i in entry.value):
                kept = [i for i in entry.value if i.get("id") != memory_id]
                try:
                    await self._mem.set(key, kept, if_version=entry.version)
                    break
                except Conflict:
                    entry = await self._mem.entry(key)
