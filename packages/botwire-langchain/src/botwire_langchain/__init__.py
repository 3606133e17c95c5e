"""LangChain integration for botwire: persistent chat history and key-value stores.

``BotWireChatHistory`` is a ``BaseChatMessageHistory`` (works with
``RunnableWithMessageHistory``); ``BotWireStore`` and ``BotWireByteStore`` are
LangChain ``BaseStore`` implementations.
"""

from botwire_langchain._history import HISTORY_KEY_PREFIX, BotWireChatHistory
from botwire_langchain._store import DEFAULT_STORE_NAMESPACE, BotWireByteStore, BotWireStore

__all__ = [
    "DEFAULT_STORE_NAMESPACE",
    "HISTORY_KEY_PREFIX",
    "BotWireByteStore",
    "BotWireChatHistory",
    "BotWireStore",
]
