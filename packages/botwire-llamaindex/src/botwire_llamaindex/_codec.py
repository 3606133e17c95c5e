"""ChatMessage <-> JSON and key escaping helpers (private)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

__all__ = ["dump_message", "dump_messages", "escape_segment", "load_messages", "unescape_segment"]

_ESCAPED = re.compile(r"%(25|2F)")


def dump_message(message: ChatMessage, *, where: str) -> dict[str, Any]:
    """Serialize one ``ChatMessage`` to JSON-safe data (``model_dump(mode="json")``)."""
    if not isinstance(message, ChatMessage):
        raise TypeError(
            f"{where}: expected a llama_index ChatMessage, got {type(message).__name__}"
        )
    return message.model_dump(mode="json")


def dump_messages(messages: Iterable[ChatMessage], *, where: str) -> list[dict[str, Any]]:
    """Serialize several messages, naming ``where`` in any error."""
    return [dump_message(m, where=where) for m in messages]


def load_messages(raw: Any, *, where: str) -> list[ChatMessage]:
    """Rebuild messages from a stored list (``None`` -> ``[]``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TypeError(
            f"{where} holds a {type(raw).__name__}, not a list of chat messages; "
            "delete that key or use another chat key"
        )
    return [ChatMessage.model_validate(item) for item in raw]


def escape_segment(text: str) -> str:
    """Escape ``%`` and ``/`` so ``text`` can be a ``/``-separated key segment."""
    return text.replace("%", "%25").replace("/", "%2F")


def unescape_segment(text: str) -> str:
    """Invert :func:`escape_segment`."""
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "/", text)
