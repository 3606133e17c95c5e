"""Helpers shared by the Strands adapter's modules."""

from __future__ import annotations

from urllib.parse import quote

from botwire import Memory

__all__ = ["key_part", "open_memory"]


def open_memory(
    namespace: str, *, url: str | None, token: str | None, memory: Memory | None
) -> Memory:
    """``memory`` if given (its namespace wins), else a client for ``namespace``."""
    if memory is not None:
        if url is not None or token is not None:
            raise ValueError("pass either memory= or url=/token=, not both")
        return memory
    return Memory(namespace, url=url, token=token)


def key_part(identifier: str) -> str:
    """An id as one '/'-free key segment: ``%`` and ``/`` percent-encoded, so the ids
    ``a/b`` and ``a%2Fb`` never share a key (botwire keys take any other character as is)."""
    if not isinstance(identifier, str) or not identifier:
        raise ValueError(f"identifier {identifier!r}: use a non-empty string")
    return quote(identifier, safe="".join(chr(c) for c in range(32, 127) if chr(c) not in "%/"))
