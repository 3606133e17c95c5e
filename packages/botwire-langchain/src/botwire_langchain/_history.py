"""``BotWireChatHistory``: a LangChain chat message history stored in botwire (private)."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from botwire_langchain._clients import MemoryPair, namespace_for_session

if TYPE_CHECKING:
    from botwire import AsyncMemory, Memory

__all__ = ["HISTORY_KEY_PREFIX", "BotWireChatHistory"]

#: Every history lives under the key ``HISTORY_KEY_PREFIX + session_id``.
HISTORY_KEY_PREFIX = "langchain/chat/"
#: The field of a stored message holding its repeat guard (:func:`_guard`).
_GUARD = "r"


def _guard() -> str:
    """A message's repeat guard: 72 random bits (12 characters), written into its stored item.
    ``add_messages`` is sent repeat-safe (no replay record on the server), so a retry after a
    lost answer may store a message twice; readers keep one item per guard."""
    return base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")


def _unique(raw: list[Any]) -> list[Any]:
    """``raw`` with one item per repeat guard: the **last** (a suffix of the list, as ``tail``
    reads, then keeps the items the whole list keeps). Items without a guard (written by
    earlier versions, or by anything else) are all kept."""
    seen: set[Any] = set()
    out: list[Any] = []
    for item in reversed(raw):
        guard = item.get(_GUARD) if isinstance(item, dict) else None
        if guard is not None:
            if guard in seen:
                continue
            seen.add(guard)
        out.append(item)
    out.reverse()
    return out


def _compact(message: BaseMessage) -> dict[str, Any]:
    """``message_to_dict(message)`` without the fields that hold their default (``{}``,
    ``None``, ``[]``, the class's own ``type``...): about half the bytes of a short message
    (issue 22). ``messages_from_dict`` fills them back; a message that would not come back
    equal (a validator deriving a field from another) is stored in full."""
    full = message_to_dict(message)
    data = dict(full["data"])
    for name, field in type(message).model_fields.items():
        if name not in data or field.is_required():
            continue
        factory = field.default_factory
        default = factory() if factory is not None else field.default  # type: ignore[call-arg]
        if type(data[name]) is type(default) and data[name] == default:
            del data[name]
    if len(data) == len(full["data"]):
        return full
    compact = {"type": full["type"], "data": data}
    try:
        same = messages_from_dict([compact])[0] == message
    except Exception:  # any failure to rebuild: keep the full form
        same = False
    return compact if same else full


class BotWireChatHistory(BaseChatMessageHistory):
    """A persistent LangChain chat history: one botwire list per session.

    Each call to :meth:`add_messages` is **one** server-side ``append`` (no read, no
    rewrite), so concurrent writers never lose a message and a turn costs one round
    trip however long the history is. It is sent repeat-safe: each stored message
    carries a random repeat guard (field ``"r"``), and a retry that stored it again
    is read once, so the server keeps no 24-hour replay record per turn.
    ``max_messages`` keeps only the newest messages (trimmed atomically by the same
    append); ``ttl`` (seconds) expires an idle history and is refreshed by every
    append.

    Where a session lives:

    * ``namespace`` and ``memory`` both omitted: the namespace is derived from
      ``session_id`` (the session id itself when it is a valid namespace), so every
      session is isolated in its own namespace.
    * ``namespace="my-app"`` (or ``memory=Memory("my-app", url=...)``): all
      sessions share that namespace, each under its own key
      ``"langchain/chat/<session_id>"``.

    The backend comes from ``memory`` when given, else from ``url``/``token``, else
    from ``BOTWIRE_URL``/``BOTWIRE_TOKEN``. The async methods use
    ``memory.as_async()`` (native async I/O); an ``AsyncMemory`` passed as ``memory``
    serves the async methods only.

    Example:
        ```python
        from langchain_core.runnables.history import RunnableWithMessageHistory
        from botwire_langchain import BotWireChatHistory

        chain_with_history = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: BotWireChatHistory(f"chat-{session_id}"),
            input_messages_key="question",
            history_messages_key="history",
        )
        chain_with_history.invoke(
            {"question": "hi"}, config={"configurable": {"session_id": "42"}}
        )
        ```
    """

    def __init__(
        self,
        session_id: str,
        *,
        namespace: str | None = None,
        memory: Memory | AsyncMemory | None = None,
        max_messages: int | None = None,
        ttl: float | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(
                f"BotWireChatHistory needs a non-empty string session_id, got {session_id!r}"
            )
        if max_messages is not None and max_messages < 1:
            raise ValueError(
                f"max_messages must be a positive integer or None, got {max_messages!r}"
            )
        self.session_id = session_id
        self.max_messages = max_messages
        self.ttl = ttl
        self.key = HISTORY_KEY_PREFIX + session_id
        default_ns = namespace_for_session(session_id)
        self._clients = MemoryPair(
            namespace, memory, url=url, token=token, default_namespace=default_ns
        )

    @property
    def namespace(self) -> str:
        """The botwire namespace holding this history."""
        return self._clients.namespace

    # -- reading -------------------------------------------------------------------

    @property
    # LangChain declares ``messages`` a plain attribute; a store reads it fresh each time, as
    # BaseChatMessageHistory's docs recommend, so it is a read-only property here.
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """All messages of this session, oldest first (``[]`` when there are none)."""
        return self._decode(self._clients.sync.get(self.key))

    async def aget_messages(self) -> list[BaseMessage]:
        """Async :attr:`messages`, using ``AsyncMemory``."""
        return self._decode(await self._clients.aio.get(self.key))

    def tail(self, n: int) -> list[BaseMessage]:
        """The last ``n`` messages, read without fetching the whole history."""
        want = n
        items = self._items(raw := self._clients.sync.tail(self.key, want))
        while len(items) < n and len(raw) == want:  # a repeat in the window: read further
            want += n - len(items)
            items = self._items(raw := self._clients.sync.tail(self.key, want))
        return messages_from_dict(items[max(len(items) - n, 0) :])

    async def atail(self, n: int) -> list[BaseMessage]:
        """Async :meth:`tail`."""
        want = n
        items = self._items(raw := await self._clients.aio.tail(self.key, want))
        while len(items) < n and len(raw) == want:
            want += n - len(items)
            items = self._items(raw := await self._clients.aio.tail(self.key, want))
        return messages_from_dict(items[max(len(items) - n, 0) :])

    # -- writing -------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic server-side ``append``, sent repeat-safe (see the
        class)."""
        items = self._encode(messages)
        if items:
            tx = self._clients.sync.atomic()
            tx.append(self.key, *items, max_len=self.max_messages, ttl=self.ttl)
            tx.commit(repeat_safe=True)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages`, using ``AsyncMemory``."""
        items = self._encode(messages)
        if items:
            tx = self._clients.aio.atomic()
            tx.append(self.key, *items, max_len=self.max_messages, ttl=self.ttl)
            await tx.commit(repeat_safe=True)

    def clear(self) -> None:
        """Delete this session's history (other sessions are untouched)."""
        self._clients.sync.delete(self.key)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self._clients.aio.delete(self.key)

    # -- helpers -------------------------------------------------------------------

    def _encode(self, messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for i, message in enumerate(messages):
            if not isinstance(message, BaseMessage):
                raise TypeError(
                    f"BotWireChatHistory({self.session_id!r}).add_messages: item {i} is a "
                    f"{type(message).__name__}, expected a langchain_core BaseMessage"
                )
            item = _compact(message)
            item[_GUARD] = _guard()
            items.append(item)
        return items

    def _decode(self, raw: Any) -> list[BaseMessage]:
        return messages_from_dict(self._items(raw))

    def _items(self, raw: Any) -> list[Any]:
        """The stored items of ``raw`` (the list read, ``None``: none), one per repeat guard."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise TypeError(
                f"botwire key {self.key!r} in namespace {self.namespace!r} holds a "
                f"{type(raw).__name__}, not a chat history list; clear it or use another "
                "session_id"
            )
        return _unique(raw)

    def __repr__(self) -> str:
        return (
            f"BotWireChatHistory(session_id={self.session_id!r}, "
            f"namespace={self.namespace!r}, max_messages={self.max_messages!r})"
        )
