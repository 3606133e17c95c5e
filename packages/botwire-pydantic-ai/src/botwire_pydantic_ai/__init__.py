"""Pydantic AI on botwire: a ``ConversationStore`` and a plain ``message_history`` per chat.

``BotWireConversationStore`` implements ``pydantic_ai.conversation_store.ConversationStore``
(for ``UIAdapter(conversation_store=...)``: Vercel AI SDK and AG-UI endpoints);
``BotWireMessageHistory`` / ``run_with_history`` keep a ``message_history`` list.
Needs Python 3.11+, as Pydantic AI's ``ConversationStore`` does.
"""

import sys

if sys.version_info < (3, 11):  # pragma: no cover - the dependency is absent on 3.10
    raise ImportError(
        "botwire-pydantic-ai needs Python 3.11 or newer: pydantic-ai-slim's ConversationStore "
        f"(2.66+) does not support Python {sys.version_info.major}.{sys.version_info.minor}"
    )

from botwire_pydantic_ai._history import (
    HISTORY_PREFIX,
    SYSTEM_PROMPT_PREFIX,
    BotWireMessageHistory,
    run_with_history,
)
from botwire_pydantic_ai._store import (
    ENTRY_PREFIX,
    RECORD_PREFIX,
    BotWireConversationStore,
)

__all__ = [
    "ENTRY_PREFIX",
    "HISTORY_PREFIX",
    "RECORD_PREFIX",
    "SYSTEM_PROMPT_PREFIX",
    "BotWireConversationStore",
    "BotWireMessageHistory",
    "run_with_history",
]
__version__ = "0.3.0"
