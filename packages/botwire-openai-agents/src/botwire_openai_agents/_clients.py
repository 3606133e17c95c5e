"""Resolve the botwire client a session talks to, and name it in errors (private)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from botwire.integration import MemoryPair

if TYPE_CHECKING:
    from botwire import AsyncMemory, Memory

__all__ = ["async_client", "namespace_for_session", "with_context"]

_NAMESPACE_OK = re.compile(r"[A-Za-z0-9._\-:@]{1,128}")
_NAMESPACE_BAD_CHAR = re.compile(r"[^A-Za-z0-9._\-:@]")


def namespace_for_session(session_id: str) -> str:
    """The namespace holding ``session_id`` when none is given: isolated per session.

    A session id that is a valid namespace is used as is (so ``Memory(session_id)`` shows it);
    anything else maps to ``oa-<sanitized prefix>-<sha256 prefix>``, valid and distinct.
    """
    if _NAMESPACE_OK.fullmatch(session_id) and session_id not in (".", ".."):
        return session_id
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]
    return f"oa-{_NAMESPACE_BAD_CHAR.sub('_', session_id)[:96]}-{digest}"


def async_client(
    namespace: str | None,
    memory: Memory | AsyncMemory | None,
    *,
    url: str | None,
    token: str | None,
    default_namespace: str,
    adapter: str,
) -> MemoryPair:
    """The clients behind one adapter object (the Agents SDK only calls async methods)."""
    return MemoryPair(
        namespace,
        memory,
        url=url,
        token=token,
        default_namespace=default_namespace,
        adapter=adapter,
    )


def with_context(exc: BaseException, what: str) -> BaseException:
    """``exc`` with a note naming the session and namespace (Python 3.11+ shows notes)."""
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        add_note(what)
    return exc
