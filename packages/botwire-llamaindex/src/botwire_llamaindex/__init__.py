"""LlamaIndex integration for botwire: persistent KV store and chat stores.

* ``BotWireKVStore`` — ``BaseKVStore`` for ``KVDocumentStore`` / ``KVIndexStore``.
* ``BotWireChatStore`` — ``BaseChatStore`` for ``ChatMemoryBuffer``.
* ``BotWireAsyncDBChatStore`` — ``AsyncDBChatStore`` for ``llama_index.core.memory.Memory``.
"""

from botwire_llamaindex._chat_store import CHAT_KEY_PREFIX, BotWireChatStore
from botwire_llamaindex._clients import DEFAULT_NAMESPACE
from botwire_llamaindex._db_chat_store import MEMORY_KEY_PREFIX, BotWireAsyncDBChatStore
from botwire_llamaindex._kvstore import KV_KEY_PREFIX, BotWireKVStore

__all__ = [
    "CHAT_KEY_PREFIX",
    "DEFAULT_NAMESPACE",
    "KV_KEY_PREFIX",
    "MEMORY_KEY_PREFIX",
    "BotWireAsyncDBChatStore",
    "BotWireChatStore",
    "BotWireKVStore",
]
