"""Resolve the botwire clients an adapter talks to (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from botwire import AsyncMemory, Memory
from botwire.integration import MemoryPair as _MemoryPair

__all__ = ["DEFAULT_NAMESPACE", "ChatStoreClients", "MemoryPair", "check_chat_key"]

#: Namespace used by every LlamaIndex adapter when none is given.
DEFAULT_NAMESPACE = "llamaindex"


class MemoryPair(_MemoryPair):
    """:class:`botwire.integration.MemoryPair` defaulting to :data:`DEFAULT_NAMESPACE`."""

    def __init__(
        self,
        namespace: str | None,
        memory: Memory | AsyncMemory | None,
        *,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(
            namespace, memory, url=url, token=token, default_namespace=DEFAULT_NAMESPACE
        )


def check_chat_key(key: object) -> str:
    """``key`` if it is a ``str`` (LlamaIndex passes chat keys and session ids through)."""
    if not isinstance(key, str):
        raise TypeError(f"chat store keys must be str, got {type(key).__name__}")
    return key


class ChatStoreClients:
    """What both chat stores share: the constructor preamble (``namespace``/``memory``/
    ``url``/``token`` resolved to a :class:`MemoryPair`) and naming a key in error messages.

    A plain mixin placed before the LlamaIndex base (a pydantic model): the pydantic fields
    ``namespace``, ``url`` and ``ttl`` and the private ``_clients`` are declared by each store,
    with descriptions of its own.

    Example::

        class MyChatStore(ChatStoreClients, BaseChatStore):
            namespace: str = Field(default=DEFAULT_NAMESPACE)
            url: str | None = None
            ttl: float | None = None
            _clients: MemoryPair = PrivateAttr()
    """

    #: What a key is called in error messages ("key", "session").
    KEY_NOUN: ClassVar[str] = "key"

    if TYPE_CHECKING:  # declared by each store as pydantic fields
        namespace: str
        _clients: MemoryPair

        @classmethod
        def class_name(cls) -> str: ...

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        url: str | None = None,
        token: str | None = None,
        ttl: float | None = None,
        **fields: Any,
    ) -> None:
        fields.pop("class_name", None)  # a serialized store carries its class name
        clients = MemoryPair(namespace, memory, url=url, token=token)
        # The pydantic base takes every field, the store's own included (namespace as resolved).
        # mypy (no pydantic plugin) sees object.__init__ behind this mixin.
        super().__init__(namespace=clients.namespace, url=url, ttl=ttl, **fields)  # type: ignore[call-arg]
        self._clients = clients

    def _where(self, key: str) -> str:
        """``BotWireChatStore(namespace='app') key 'user-42'``: where a bad message is."""
        return f"{self.class_name()}(namespace={self.namespace!r}) {self.KEY_NOUN} {key!r}"
