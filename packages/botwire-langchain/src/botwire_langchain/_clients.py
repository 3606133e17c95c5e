"""Resolve the botwire clients an adapter talks to (private)."""

from __future__ import annotations

import hashlib
import re

from botwire.integration import MemoryPair

__all__ = ["MemoryPair", "namespace_for_session"]

_NAMESPACE_OK = re.compile(r"[A-Za-z0-9._\-:@]{1,128}")
_NAMESPACE_BAD_CHAR = re.compile(r"[^A-Za-z0-9._\-:@]")


def namespace_for_session(session_id: str) -> str:
    """Return the namespace that holds ``session_id``'s history by default.

    A session id that is already a valid namespace (1–128 characters of
    ``A-Z a-z 0-9 . _ - : @``) is used as is, so ``Memory(session_id)`` shows the
    history. Anything else is mapped to ``lc-<sanitized prefix>-<sha256 prefix>``,
    which stays valid and distinct per session id.
    """
    if _NAMESPACE_OK.fullmatch(session_id) and session_id not in (".", ".."):
        return session_id
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]
    cleaned = _NAMESPACE_BAD_CHAR.sub("_", session_id)[:96]
    return f"lc-{cleaned}-{digest}"
