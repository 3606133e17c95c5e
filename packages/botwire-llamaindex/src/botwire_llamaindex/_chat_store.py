"""``BotWireChatStore``: a LlamaIndex ``BaseChatStore`` persisted in botwire (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore

from botwire_llamaindex._cas import ListEdit, acas_edit, cas_edit, delete_at
from botwire_llamaindex._clients import (
    DEFAULT_NAMESPACE,
    ChatStoreClients,
    MemoryPair,
    check_chat_key,
)
from botwire_llamaindex._codec import dump_message, load_messages

if TYPE_CHECKING:
    pass

__all__ = ["CHAT_KEY_PREFIX", "BotWireChatStore"]

#: The chat ``key`` is stored under the botwire key ``CHAT_KEY_PREFIX + key``.
CHAT_KEY_PREFIX = "chat/"


def _delete_all(items: list[Any]) -> ListEdit[Any]:
    return ListEdit(result=items, new_items=None)


class BotWireChatStore(ChatStoreClients, BaseChatStore):
    """LlamaIndex chat store persisted in botwire: one list per chat key.

    ``add_message`` / ``async_add_message`` are one server-side ``append`` (nothing
    is read or rewritten, so concurrent writers never lose a message);
    ``delete_last_message`` is one ``pop``; ``delete_message(idx)`` and
    ``delete_messages`` are compare-and-set edits retried on conflict. Every async
    method uses ``AsyncMemory`` natively. ``max_messages`` keeps only the newest
    messages per key; ``ttl`` (seconds) expires idle chats.

    Works with ``ChatMemoryBuffer`` (and anything else that takes a
    ``BaseChatStore``).

    Example:
        ```python
        from llama_index.core.memory import ChatMemoryBuffer
        from botwire_llamaindex import BotWireChatStore

        store = BotWireChatStore("my-app")
        memory = ChatMemoryBuffer.from_defaults(
            chat_store=store, chat_store_key="user-42", token_limit=3000
        )
        ```
    """

    namespace: str = Field(default=DEFAULT_NAMESPACE, description="botwire namespace")
    url: str | None = Field(default=None, description="botwire URL (None: BOTWIRE_URL)")
    ttl: float | None = Field(default=None, description="expiry of idle chats, seconds")
    max_messages: int | None = Field(default=None, description="keep only the newest N")

    _clients: MemoryPair = PrivateAttr()

    def __init__(
        self, namespace: str | None = None, *, max_messages: int | None = None, **kwargs: Any
    ) -> None:
        """``memory=``, ``url=``, ``token=``, ``ttl=``: as :class:`ChatStoreClients` takes
        them; ``max_messages``: keep only the newest N per key."""
        if max_messages is not None and max_messages < 1:
            raise ValueError(
                f"max_messages must be a positive integer or None, got {max_messages!r}"
            )
        super().__init__(namespace, max_messages=max_messages, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialization."""
        return "BotWireChatStore"

    def _key(self, key: str) -> str:
        return CHAT_KEY_PREFIX + check_chat_key(key)

    # -- sync ---------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the chat at ``key`` with ``messages`` (one write)."""
        items = [dump_message(m, where=self._where(key)) for m in messages]
        if self.max_messages is not None:
            items = items[-self.max_messages :]
        if items:
            self._clients.sync.set(self._key(key), items, ttl=self.ttl)
        else:
            self._clients.sync.delete(self._key(key))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """Every message at ``key``, oldest first (``[]`` when there are none)."""
        return load_messages(self._clients.sync.get(self._key(key)), where=self._where(key))

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append ``message`` (one atomic server-side ``append``)."""
        item = dump_message(message, where=self._where(key))
        self._clients.sync.append(self._key(key), item, max_len=self.max_messages, ttl=self.ttl)

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete the chat at ``key``; the deleted messages, or ``None`` if absent."""
        raw = cas_edit(self._clients.sync, self._key(key), _delete_all, ttl=self.ttl)
        return load_messages(raw, where=self._where(key)) if raw else None

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx``; it, or ``None`` if out of range."""
        raw = cas_edit(self._clients.sync, self._key(key), delete_at(idx), ttl=self.ttl)
        return None if raw is None else ChatMessage.model_validate(raw)

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Remove and return the newest message (one server-side ``pop``)."""
        raw = self._clients.sync.pop(self._key(key))
        return None if raw is None else ChatMessage.model_validate(raw)

    def get_keys(self) -> list[str]:
        """Every chat key that holds messages."""
        n = len(CHAT_KEY_PREFIX)
        return [k[n:] for k in self._clients.sync.list(CHAT_KEY_PREFIX)]

    # -- async (native AsyncMemory) -----------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Async :meth:`set_messages`."""
        items = [dump_message(m, where=self._where(key)) for m in messages]
        if self.max_messages is not None:
            items = items[-self.max_messages :]
        if items:
            await self._clients.aio.set(self._key(key), items, ttl=self.ttl)
        else:
            await self._clients.aio.delete(self._key(key))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        """Async :meth:`get_messages`."""
        raw = await self._clients.aio.get(self._key(key))
        return load_messages(raw, where=self._where(key))

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        """Async :meth:`add_message`."""
        item = dump_message(message, where=self._where(key))
        await self._clients.aio.append(
            self._key(key), item, max_len=self.max_messages, ttl=self.ttl
        )

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        """Async :meth:`delete_messages`."""
        raw = await acas_edit(self._clients.aio, self._key(key), _delete_all, ttl=self.ttl)
        return load_messages(raw, where=self._where(key)) if raw else None

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Async :meth:`delete_message`."""
        raw = await acas_edit(self._clients.aio, self._key(key), delete_at(idx), ttl=self.ttl)
        return None if raw is None else ChatMessage.model_validate(raw)

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        """Async :meth:`delete_last_message`."""
        raw = await self._clients.aio.pop(self._key(key))
        return None if raw is None else ChatMessage.model_validate(raw)

    async def aget_keys(self) -> list[str]:
        """Async :meth:`get_keys`."""
        n = len(CHAT_KEY_PREFIX)
        return [k[n:] for k in await self._clients.aio.list(CHAT_KEY_PREFIX)]
