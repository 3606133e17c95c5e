"""Resolve the botwire clients an adapter talks to (private)."""

from __future__ import annotations

from botwire import AsyncMemory, Memory
from botwire.integration import MemoryPair as _MemoryPair

__all__ = ["DEFAULT_NAMESPACE", "MemoryPair"]

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
