"""Typed serializer output (``(type, bytes)``) as JSON: ``[type, base64 text]``."""

from __future__ import annotations

import base64
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

__all__ = ["dump", "load"]


def dump(serde: SerializerProtocol, obj: Any) -> list[str]:
    """Serialize ``obj`` with the saver's serde into a JSON-safe pair."""
    type_, data = serde.dumps_typed(obj)
    return [type_, base64.b64encode(data).decode("ascii")]


def load(serde: SerializerProtocol, pair: list[str]) -> Any:
    """Inverse of :func:`dump`."""
    return serde.loads_typed((pair[0], base64.b64decode(pair[1])))
