"""Resolve the botwire clients an adapter talks to (private)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import weakref

from botwire import AsyncMemory, Memory

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


class MemoryPair:
    """The sync and async botwire clients behind one adapter object.

    Given a :class:`botwire.Memory` (or nothing: one is made from ``namespace``,
    ``url``, ``token`` or ``BOTWIRE_URL``), async clients are made with
    ``Memory.as_async()`` (same backend, config and namespace), one per running event
    loop: callers may run each request in its own ``asyncio.run``, and an async HTTP
    client must not be shared across loops. Given an
    :class:`botwire.AsyncMemory`, only async methods are available.
    """

    def __init__(
        self,
        namespace: str | None,
        memory: Memory | AsyncMemory | None,
        *,
        url: str | None = None,
        token: str | None = None,
        default_namespace: str,
    ) -> None:
        self._sync: Memory | None = None
        self._fixed_async: AsyncMemory | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncMemory] = (
            weakref.WeakKeyDictionary()
        )
        if memory is None:
            self._sync = Memory(namespace or default_namespace, url=url, token=token)
        elif isinstance(memory, Memory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._sync = memory.with_namespace(namespace) if needs_other else memory
        elif isinstance(memory, AsyncMemory):
            needs_other = namespace is not None and namespace != memory.namespace
            self._fixed_async = memory.with_namespace(namespace) if needs_other else memory
        else:
            raise TypeError(
                f"memory= must be a botwire.Memory or AsyncMemory, got {type(memory).__name__}; "
                "e.g. memory=Memory('my-app', url='http://localhost:8765')"
            )

    @property
    def namespace(self) -> str:
        """The botwire namespace the clients use."""
        if self._sync is not None:
            return self._sync.namespace
        assert self._fixed_async is not None
        return self._fixed_async.namespace

    @property
    def sync(self) -> Memory:
        """The sync client; a clear error when only an AsyncMemory was given."""
        if self._sync is None:
            raise TypeError(
                f"this botwire adapter was given an AsyncMemory (namespace {self.namespace!r}), "
                "which serves only its async methods; pass memory=Memory(...) to use the sync "
                "methods too"
            )
        return self._sync

    @property
    def aio(self) -> AsyncMemory:
        """The async client for the running event loop (created on first use)."""
        if self._fixed_async is not None:
            return self._fixed_async
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self.sync.as_async()
            self._async[loop] = client
        return client
