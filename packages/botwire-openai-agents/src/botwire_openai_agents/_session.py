"""``BotWireSession``: an OpenAI Agents SDK session stored in botwire (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.memory import SessionABC, SessionSettings
from agents.memory.session_settings import resolve_session_limit

from botwire import BotWireError
from botwire_openai_agents._clients import async_client, namespace_for_session, with_context

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

    from botwire import AsyncMemory, Memory

__all__ = ["SESSION_KEY_PREFIX", "BotWireSession"]

#: Every session's items live in one botwire list under ``SESSION_KEY_PREFIX + session_id``.
SESSION_KEY_PREFIX = "openai-agents/session/"


class BotWireSession(SessionABC):
    """A persistent OpenAI Agents SDK session: one botwire list per session.

    ``Runner.run(agent, text, session=BotWireSession("user-42"))`` keeps the conversation
    across invocations (a Lambda or Vercel function gets a fresh process every cold start).
    Every operation is one round trip whatever the history length: :meth:`add_items` is one
    server-side ``append`` (concurrent writers never lose an item), :meth:`get_items` with a
    limit is one ``tail``, :meth:`pop_item` one atomic ``pop``. ``ttl`` (seconds) expires an
    idle session and is refreshed by every append; ``max_items`` keeps only the newest items,
    trimmed by the same append (a namespace's retention policy, docs/coordination.md, bounds
    them too, whatever the session asks).

    It subclasses ``agents.memory.SessionABC``, so ``EncryptedSession`` and
    ``OpenAIResponsesCompactionSession`` accept it as their underlying session.

    Where a session lives: with neither ``namespace`` nor ``memory``, in a namespace of its own
    derived from ``session_id`` (sessions are isolated by default); with
    ``namespace="my-app"`` (or ``memory=Memory("my-app", ...)``) sessions share that
    namespace, each under its key ``"openai-agents/session/<session_id>"``. The backend comes
    from ``memory``, else ``url``/``token``, else ``BOTWIRE_URL``/``BOTWIRE_TOKEN``.
    """

    def __init__(
        self,
        session_id: str,
        *,
        namespace: str | None = None,
        memory: Memory | AsyncMemory | None = None,
        ttl: float | None = None,
        max_items: int | None = None,
        session_settings: SessionSettings | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(
                f"BotWireSession needs a non-empty string session_id, got {session_id!r}"
            )
        if ttl is not None and not ttl > 0:
            raise ValueError(
                f"BotWireSession({session_id!r}): ttl must be a positive number of seconds "
                f"or None (never expire), got {ttl!r}"
            )
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1
        ):
            raise ValueError(
                f"BotWireSession({session_id!r}): max_items must be a whole number >= 1 or "
                f"None (keep every item), got {max_items!r}"
            )
        self.session_id = session_id
        self.max_items = max_items
        self.session_settings = session_settings
        self.ttl = ttl
        self.key = SESSION_KEY_PREFIX + session_id
        self._clients = async_client(
            namespace,
            memory,
            url=url,
            token=token,
            default_namespace=namespace_for_session(session_id),
            adapter="BotWireSession",
        )

    @property
    def namespace(self) -> str:
        """The botwire namespace holding this session."""
        return self._clients.namespace

    def _context(self, exc: BaseException, operation: str) -> BaseException:
        return with_context(
            exc,
            f"while {operation} of OpenAI Agents session {self.session_id!r} "
            f"(botwire namespace {self.namespace!r}, key {self.key!r})",
        )

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first; with ``limit`` (or ``session_settings.limit``)
        only the latest ``limit`` of them, read in one ``tail``.

        As the SDK's ``SQLiteSession``: ``limit=0`` gives ``[]``, a negative limit every item
        (SQLite's ``LIMIT -1`` means no limit, which ``SQLiteSession`` keeps on purpose).
        """
        limit = resolve_session_limit(limit, self.session_settings)
        try:
            if limit is None or limit < 0:
                items = await self._clients.aio.get(self.key)
            elif limit == 0:
                return []
            else:
                items = await self._clients.aio.tail(self.key, limit)
        except BotWireError as exc:
            raise self._context(exc, "reading the items") from None
        if items is None:
            return []
        if not isinstance(items, list):
            raise TypeError(
                f"key {self.key!r} in botwire namespace {self.namespace!r} holds a "
                f"{type(items).__name__}, not the item list of OpenAI Agents session "
                f"{self.session_id!r}; it was written by something else: use another "
                "session_id or namespace (the value was left as it is)"
            )
        return items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one atomic server-side ``append`` (no read, no rewrite)."""
        if not items:
            return
        try:
            await self._clients.aio.append(self.key, *items, ttl=self.ttl, max_len=self.max_items)
        except BotWireError as exc:
            raise self._context(exc, f"adding {len(items)} item(s)") from None

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the most recent item (``None`` when the session is empty)."""
        try:
            # the stored JSON is an item add_items wrote (the store does not check its shape)
            item: TResponseInputItem | None = await self._clients.aio.pop(self.key)
        except BotWireError as exc:
            raise self._context(exc, "popping the last item") from None
        return item

    async def clear_session(self) -> None:
        """Delete every item of this session."""
        try:
            await self._clients.aio.delete(self.key)
        except BotWireError as exc:
            raise self._context(exc, "clearing") from None

    async def aclose(self) -> None:
        """Close the clients this session made (a ``memory`` passed in stays open)."""
        await self._clients.aclose()

    def __repr__(self) -> str:
        return f"BotWireSession({self.session_id!r}, namespace={self.namespace!r})"
