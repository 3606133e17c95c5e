"""MemoryContent ⇄ JSON: every AutoGen content type round-trips through botwire."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from autogen_core import Image
from autogen_core.memory import MemoryContent, MemoryMimeType

__all__ = ["decode_content", "encode_content", "render_content", "searchable_text"]


def _mime(value: MemoryMimeType | str) -> str:
    return value.value if isinstance(value, MemoryMimeType) else str(value)


_MIME_VALUES = frozenset(m.value for m in MemoryMimeType)


def _decode_mime(data: dict[str, Any]) -> MemoryMimeType | str:
    """The ``mime_type`` as added: ``MemoryMimeType`` is a plain Enum (never ``== "text/plain"``),
    so ListMemory's ``query`` returning the item as added means enum for enum, str for str.

    Items stored before ``mime_enum`` existed come back as the enum when their string is one of
    its values: the enum is AutoGen's own form (its examples, autogen_ext's memories compare
    against it, and its Redis memory rebuilds it from the stored string the same way)."""
    value = str(data.get("mime_type", MemoryMimeType.TEXT.value))
    enum = data.get("mime_enum")
    if enum is None:  # stored before the flag
        enum = value in _MIME_VALUES
    return MemoryMimeType(value) if enum and value in _MIME_VALUES else value


def encode_content(item: MemoryContent) -> dict[str, Any]:
    """A JSON-ready dict for ``item``; bytes and images are stored as base64."""
    content = item.content
    data: str | dict[str, Any]
    if isinstance(content, str):
        kind, data = "text", content
    elif isinstance(content, (bytes, bytearray)):
        kind, data = "bytes", base64.b64encode(bytes(content)).decode("ascii")
    elif isinstance(content, Image):
        kind, data = "image", content.to_base64()
    elif isinstance(content, dict):
        kind, data = "json", content
    else:  # pragma: no cover - MemoryContent's validation rules this out
        raise TypeError(f"unsupported MemoryContent.content type {type(content).__name__}")
    return {
        "kind": kind,
        "content": data,
        "mime_type": _mime(item.mime_type),
        "mime_enum": isinstance(item.mime_type, MemoryMimeType),
        "metadata": item.metadata,
        "added_at": time.time(),
    }


def decode_content(data: dict[str, Any]) -> MemoryContent:
    """Rebuild the :class:`MemoryContent` that :func:`encode_content` stored."""
    kind = data.get("kind", "text")
    raw = data.get("content")
    content: Any
    if kind == "bytes":
        content = base64.b64decode(raw or "")
    elif kind == "image":
        content = Image.from_base64(raw or "")
    else:
        content = raw
    return MemoryContent(
        content=content,
        mime_type=_decode_mime(data),
        metadata=data.get("metadata"),
    )


def render_content(item: MemoryContent) -> str:
    """One line of text for the model context (non-text content is described, not dumped)."""
    content = item.content
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False)
    if isinstance(content, (bytes, bytearray)):
        return f"[{len(content)} bytes of {_mime(item.mime_type)}]"
    return f"[image ({_mime(item.mime_type)})]"


def searchable_text(item: MemoryContent) -> str:
    """The text that relevance scoring looks at (empty for bytes and images)."""
    content = item.content
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False)
    return ""
