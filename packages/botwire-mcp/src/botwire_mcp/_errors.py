"""How failures reach an MCP client.

- botwire's errors (and the graph's 'Entity ... not found') become the SDK's ToolError /
  ResourceError, so the client reads the message on every SDK version; anything else stays a
  crash the SDK logs (and, on mcp 2.x, does not reveal);
- a refusal of botwire-mcp's *own* token by the botwire-server is the operator's to fix, not the
  caller's: it must not tell the caller to fix its Authorization header, nor show the scope of
  the operator's token;
- a value nested deeper than a tool result can carry fails with a message naming it and the
  resource that can carry it, not with the SDK's serializer error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from botwire import BotWireError, Forbidden, Unauthorized

__all__ = ["MAX_DEPTH", "CallerRefused", "anticipated", "check_depth", "public_url"]

log = logging.getLogger("botwire_mcp")

# Levels of JSON nesting a tool result's value may have. The SDK's pydantic parser stops at 200
# levels (the client's reading a result, whose value sits 3 levels down in the JSON-RPC
# message) and its serializer near 255; 190 leaves room for the envelope on either generation.
MAX_DEPTH = 190


class CallerRefused(Exception):
    """The caller's own token does not allow the call (checked by botwire-mcp itself)."""


def public_url(url: str | None) -> str:
    """``url`` without credentials, query or fragment (it goes into messages and logs)."""
    if not url:
        return "(BOTWIRE_URL unset)"
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.partition("?")[0]


def _operator_refused(exc: Unauthorized | Forbidden, backend: str) -> str:
    if isinstance(exc, Unauthorized):
        why = "it is missing, invalid or expired"
        fix = "a valid BOTWIRE_TOKEN"
    else:
        ns = f"namespace {exc.namespace!r}" if exc.namespace else "the namespace it serves"
        why = f"it does not cover {ns} or this operation (for example, it is read-only)"
        fix = f"a BOTWIRE_TOKEN covering {ns}, with write permission for writes"
    return (
        f"botwire-mcp: the botwire-server at {backend} refused botwire-mcp's own token "
        f"(BOTWIRE_TOKEN): {why}. This is not about your request or your token; the operator "
        f"of this MCP server must restart it with {fix}."
    )


def anticipated(error: type[Exception], backend: Callable[[], str]) -> Callable[[Any], Any]:
    """Re-raise anticipated failures of a tool or resource as ``error`` (see the module)."""

    def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except CallerRefused as exc:
                raise error(str(exc)) from exc
            except (Unauthorized, Forbidden) as exc:  # only the backend raises these here
                url = backend()
                log.warning(
                    "botwire-mcp: the botwire-server at %s refused BOTWIRE_TOKEN: %s", url, exc
                )
                raise error(_operator_refused(exc, url)) from None
            except (BotWireError, ValueError) as exc:
                raise error(str(exc)) from exc

        return wrapper

    return wrap


def _depth(value: Any) -> int:
    """Levels of nested lists/objects in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_depth(value: Any, *, what: str, namespace: str, key: str, uri: str | None) -> None:
    """Refuse a result ``value`` nested deeper than :data:`MAX_DEPTH`, naming the resource
    ``uri`` that carries it as JSON text instead."""
    depth = _depth(value)
    if depth > MAX_DEPTH:
        how = (
            f"read it as the resource {uri} (its JSON text)"
            if uri
            else "read it with a botwire client (Memory.get)"
        )
        raise ValueError(
            f"botwire-mcp: {what} key {key!r} in namespace {namespace!r} is nested {depth} "
            f"levels deep; an MCP tool result carries at most {MAX_DEPTH}. Nothing is wrong "
            f"with the stored value: {how}."
        )
