"""``BotWireAsyncDBChatStore``: the ``AsyncDBChatStore`` behind LlamaIndex ``Memory`` (private)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from botwire import Conflict
from botwire_llamaindex._cas import (
    MAX_ATTEMPTS,
    ListEdit,
    acas_edit,
    as_list,
    backoff,
    delete_at,
)
from botwire_llamaindex._clients import (
    DEFAULT_NAMESPACE,
    ChatStoreClients,
    MemoryPair,
    check_chat_key,
)
from botwire_llamaindex._codec import dump_messages, load_messages

if TYPE_CHECKING:
    from botwire import AsyncMemory

__all__ = ["MEMORY_KEY_PREFIX", "BotWireAsyncDBChatStore"]

#: Session ``key`` keeps its messages in ``MEMORY_KEY_PREFIX + key + "/active"`` and
#: ``MEMORY_KEY_PREFIX + key + "/archived"``.
MEMORY_KEY_PREFIX = "memory/"
_SUFFIXES = {MessageStatus.ACTIVE: "active", MessageStatus.ARCHIVED: "archived"}


def _take_oldest(n: int) -> Any:
    def edit(items: list[Any]) -> ListEdit[list[Any]]:
        if n <= 0 or not items:
            return ListEdit(result=[], changed=False)
        return ListEdit(result=items[:n], new_items=items[n:])

    return edit


class BotWireAsyncDBChatStore(ChatStoreClients, AsyncDBChatStore):
    """The chat store for LlamaIndex's ``Memory`` (``AsyncDBChatStore``), in botwire.

    Each session keeps two botwire lists, ``memory/<key>/active`` (the FIFO queue
    ``Memory`` reads) and ``memory/<key>/archived`` (messages flushed out of it).
    ``add_message``/``add_messages`` are one server-side ``append``;
    ``archive_oldest_messages`` moves the oldest active messages to the archive in
    one atomic batch guarded by the active list's version (retried on conflict), so
    messages appended meanwhile are never lost. ``get_messages(status=None)``
    returns archived then active messages.

    ``delete_message(key, idx)`` takes ``idx`` as the position in the active list
    (LlamaIndex's SQL store uses a row id; botwire lists have positions).

    Example:
        ```python
        from llama_index.core.memory import Memory
        from botwire_llamaindex import BotWireAsyncDBChatStore

        memory = Memory.from_defaults(
            session_id="user-42", chat_store=BotWireAsyncDBChatStore("my-app")
        )
        ```
    """

    namespace: str = Field(default=DEFAULT_NAMESPACE, description="botwire namespace")
    url: str | None = Field(default=None, description="botwire URL (None: BOTWIRE_URL)")
    ttl: float | None = Field(default=None, description="expiry of idle sessions, seconds")

    _clients: MemoryPair = PrivateAttr()

    KEY_NOUN: ClassVar[str] = "session"

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialization."""
        return "BotWireAsyncDBChatStore"

    # -- helpers ------------------------------------------------------------------------

    @property
    def _aio(self) -> AsyncMemory:
        return self._clients.aio

    @staticmethod
    def _list_key(key: str, status: MessageStatus) -> str:
        check_chat_key(key)
        try:
            suffix = _SUFFIXES[MessageStatus(status)]
        except ValueError:
            raise ValueError(
                f"unknown message status {status!r}; use MessageStatus.ACTIVE or ARCHIVED"
            ) from None
        return f"{MEMORY_KEY_PREFIX}{key}/{suffix}"

    async def _raw(self, key: str, status: MessageStatus | None) -> list[Any]:
        if status is not None:
            return list(await self._aio.get(self._list_key(key, status)) or [])
        archived = self._list_key(key, MessageStatus.ARCHIVED)
        active = self._list_key(key, MessageStatus.ACTIVE)
        found = await self._aio.get_many([archived, active])
        return list(found.get(archived) or []) + list(found.get(active) or [])

    # -- AsyncDBChatStore -----------------------------------------------------------------

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """Messages with ``status`` (``None``: all), oldest first.

        ``offset`` skips that many, ``limit`` caps the count (as SQL does).
        """
        raw = await self._raw(key, status)
        if offset:
            raw = raw[offset:]
        if limit is not None:
            raw = raw[: max(0, limit)]
        return load_messages(raw, where=self._where(key))

    async def count_messages(
        self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE
    ) -> int:
        """How many messages with ``status`` (``None``: all) the session holds."""
        return len(await self._raw(key, status))

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append one message (one server-side ``append``)."""
        await self.add_messages(key, [message], status=status)

    async def add_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        """Append ``messages`` in order, atomically (one server-side ``append``)."""
        items = dump_messages(messages, where=self._where(key))
        if items:
            await self._aio.append(self._list_key(key, status), *items, ttl=self.ttl)

    async def set_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        """Replace the whole session (both statuses) by ``messages`` with ``status``."""
        items = dump_messages(messages, where=self._where(key))
        target = self._list_key(key, status)
        async with self._aio.atomic() as tx:
            for other in MessageStatus:
                if other != status:
                    tx.delete(self._list_key(key, other))
            if items:
                tx.set(target, items, ttl=self.ttl)
            else:
                tx.delete(target)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the active message at position ``idx``; it, or ``None``."""
        raw = await acas_edit(
            self._aio, self._list_key(key, MessageStatus.ACTIVE), delete_at(idx), ttl=self.ttl
        )
        return None if raw is None else ChatMessage.model_validate(raw)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete the session's messages with ``status`` (``None``: all of them)."""
        statuses = list(MessageStatus) if status is None else [status]
        await self._aio.delete_many([self._list_key(key, s) for s in statuses])

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages and return them."""
        raw = await acas_edit(
            self._aio, self._list_key(key, MessageStatus.ACTIVE), _take_oldest(n), ttl=self.ttl
        )
        return load_messages(raw, where=self._where(key))

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Move the ``n`` oldest active messages to the archive and return them."""
        active = self._list_key(key, MessageStatus.ACTIVE)
        archived = self._list_key(key, MessageStatus.ARCHIVED)
        last: Conflict | None = None
        for attempt in range(MAX_ATTEMPTS):
            entry = await self._aio.entry(active)
            items = [] if entry is None else as_list(entry.value, active)
            if n <= 0 or entry is None or not items:  # entry None: items is [] too
                return []
            moved, rest = items[:n], items[n:]
            tx = self._aio.atomic()
            tx.check(active, entry.version)
            if rest:
                tx.set(active, rest, ttl=self.ttl)
            else:
                tx.delete(active)
            tx.append(archived, *moved, ttl=self.ttl)
            try:
                await tx.commit()
            except Conflict as exc:
                last = exc
                await asyncio.sleep(backoff(attempt))
                continue
            return load_messages(moved, where=self._where(key))
        assert last is not None
        raise last

    async def get_keys(self) -> list[str]:
        """Every session key that holds messages (active or archived)."""
        n = len(MEMORY_KEY_PREFIX)
        seen: dict[str, None] = {}
        for stored in await self._aio.list(MEMORY_KEY_PREFIX):
            session, _, suffix = stored[n:].rpartition("/")
            if suffix in _SUFFIXES.values():
                seen.setdefault(session, None)
        return list(seen)
