"""Comparing batch answers of two stores (or two namespaces): what always differs is left out."""

from __future__ import annotations

from typing import Any

__all__ = ["strip_answer"]


def strip_answer(found: Any, drop: tuple[str, ...] = ()) -> Any:
    """``found`` without its versions and times (two namespaces never share those), nor the
    fields named in ``drop``."""
    if isinstance(found, list):
        return [strip_answer(r, drop) for r in found]
    if isinstance(found, dict):
        return {
            k: strip_answer(v, drop)
            for k, v in found.items()
            if k not in ("version", "current_version", *drop) and not k.endswith("_at")
        }
    return found
