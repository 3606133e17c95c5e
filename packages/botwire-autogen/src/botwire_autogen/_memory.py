"""``BotWireMemory``: AutoGen's ``Memory`` kept in a botwire namespace."""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

from autogen_core import CancellationToken, Component
from autogen_core.memory import Memory, MemoryContent, MemoryQueryResult, UpdateContextResult
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import SystemMessage
from pydantic import BaseModel, Field
from typing_extensions import Self

from botwire import AsyncMemory
from botwire import Memory as SyncMemory
from botwire_autogen._codec import decode_content, encode_content, render_content, searchable_text
from botwire_autogen._relevance import overlap_score, words

__all__ = ["BotWireMemory", "BotWireMemoryConfig"]


class BotWireMemoryConfig(BaseModel):
    """Serializable configuration of :class:`BotWireMemory` (what ``dump_component`` writes).

    The bearer token is deliberately **not** part of it: a loaded component reads the token
    from the environment variable named by ``token_env`` (``BOTWIRE_TOKEN`` by default).
    """

    namespace: str = Field(description="botwire namespace holding the memories.")
    url: str | None = Field(
        default=None, description="botwire URL; None means BOTWIRE_URL (or the local default)."
    )
    key: str = Field(default="memories", description="Key of the list that holds the memories.")
    max_results: int = Field(default=5, ge=1, description="Most memories a query returns.")
    match: Literal["words", "all"] = Field(
        default="words",
        description="'words': a query returns the memories sharing words with it; 'all': every "
        "memory, query ignored (autogen_core's ListMemory behaviour).",
    )
    name: str | None = Field(default=None, description="Optional name of this memory.")
    token_env: str = Field(
        default="BOTWIRE_TOKEN", description="Environment variable holding the bearer token."
    )


def _last_text(messages: list[Any]) -> str:
    """Text of the most recent message that has any (string or list-of-parts content)."""
    for message in reversed(messages):
        content = getattr(message, "content", None)
        if isinstance(content, str) and content.strip():
            return content
        if isinstance(content, list):
            text = " ".join(part for part in content if isinstance(part, str)).strip()
            if text:
                return text
    return ""


class BotWireMemory(Memory, Component[BotWireMemoryConfig]):
    """AutoGen memory that persists in botwire, so an agent remembers across invocations.

    Memories are kept, in the order added, as one botwire list (``key``) that grows by atomic
    server-side ``append``: several processes can ``add`` at once and nothing is lost.

    * ``query(text)`` ranks memories by **word overlap** with ``text`` (the share of the query's
      words a memory contains; stop words ignored, plurals folded) and returns at most
      ``max_results`` with a score above zero, best first; each result's ``metadata`` gets a
      ``"score"``. An empty query returns the most recent ``max_results`` memories.
    * ``update_context`` queries with the last message of the model context and adds the
      results as one ``SystemMessage`` (like ``ListMemory``); when no memory shares a word
      with it, the most recent ``max_results`` memories are added instead.
    * ``match="all"`` behaves as autogen_core's ``ListMemory`` instead: ``query`` ignores its
      text and returns every memory, oldest first, and ``update_context`` adds them all
      ("in chronological order"). A persistent memory only grows, so the default bounds what
      reaches the model; choose ``"all"`` for small memories that must all be seen.

    It is a ``Component``: ``dump_component()`` / ``BotWireMemory.load_component(...)`` round
    trip namespace, url, key and limits — never the token (see :class:`BotWireMemoryConfig`).

    Args:
        namespace: botwire namespace, e.g. ``"user-alice"``.
        url: botwire URL; default ``BOTWIRE_URL``.
        token: bearer token; default the variable named by ``token_env``.
        memory: an existing :class:`botwire.AsyncMemory` or :class:`botwire.Memory` to use
            (also pass its ``url=`` if you will ``dump_component()``).
        key: key of the list inside the namespace.
        max_results: most memories returned by a query or added to the context (``"words"``).
        match: ``"words"`` (default: rank by shared words) or ``"all"`` (as ``ListMemory``).
        name: optional name.
        token_env: environment variable to read the token from when ``token`` is not given.

    Example:
        >>> from autogen_agentchat.agents import AssistantAgent
        >>> from autogen_core.memory import MemoryContent
        >>> from botwire_autogen import BotWireMemory
        >>> memory = BotWireMemory("user-alice")
        >>> await memory.add(MemoryContent(content="Alice prefers tea",
        ...                                mime_type="text/plain"))  # doctest: +SKIP
        >>> agent = AssistantAgent("assistant", model_client, memory=[memory])  # doctest: +SKIP
    """

    component_type = "memory"
    component_config_schema = BotWireMemoryConfig
    component_provider_override = "botwire_autogen.BotWireMemory"

    def __init__(
        self,
        namespace: str | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        memory: AsyncMemory | SyncMemory | None = None,
        key: str = "memories",
        max_results: int = 5,
        match: Literal["words", "all"] = "words",
        name: str | None = None,
        token_env: str = "BOTWIRE_TOKEN",
    ) -> None:
        if max_results < 1:
            raise ValueError(f"BotWireMemory: max_results must be at least 1, got {max_results}")
        if match not in ("words", "all"):
            raise ValueError(
                f"BotWireMemory: match={match!r}; use 'words' (rank by shared words) or 'all' "
                "(every memory, as ListMemory)"
            )
        self._match = match
        if memory is not None:
            if namespace is not None and namespace != memory.namespace:
                raise ValueError(
                    f"BotWireMemory: namespace {namespace!r} differs from memory.namespace "
                    f"{memory.namespace!r}; pass only one of them"
                )
            namespace = memory.namespace
        if namespace is None:
            raise TypeError(
                "BotWireMemory() needs a namespace, e.g. BotWireMemory('user-alice'), "
                "or memory=botwire.AsyncMemory(...)"
            )
        self._namespace = namespace
        self._url = url
        # A client passed in does not expose its URL: dump_component() then cannot record it.
        self._url_unknown = memory is not None and url is None
        self._token = token
        self._token_env = token_env
        self._key = key
        self._max_results = max_results
        self._name = name or f"botwire:{namespace}"
        self._owned = memory is None
        self._client: AsyncMemory | None = (
            memory.as_async() if isinstance(memory, SyncMemory) else memory
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Name of this memory (default ``botwire:<namespace>``)."""
        return self._name

    @property
    def namespace(self) -> str:
        """The botwire namespace."""
        return self._namespace

    @property
    def key(self) -> str:
        """The key of the list holding the memories."""
        return self._key

    @property
    def client(self) -> AsyncMemory:
        """The :class:`botwire.AsyncMemory` used (opened on first use)."""
        if self._client is None:
            token = self._token if self._token is not None else os.environ.get(self._token_env)
            self._client = AsyncMemory(self._namespace, url=self._url, token=token)
        return self._client

    def __repr__(self) -> str:
        return f"BotWireMemory(namespace={self._namespace!r}, key={self._key!r})"

    # -- the Memory interface --------------------------------------------------------------

    async def add(
        self, content: MemoryContent, cancellation_token: CancellationToken | None = None
    ) -> None:
        """Append ``content`` (one atomic append; safe with concurrent writers).

        Raises:
            botwire.NotSerializable: ``content.metadata`` is not JSON.
        """
        await self.client.append(self._key, encode_content(content))

    async def contents(self) -> list[MemoryContent]:
        """Every stored memory, oldest first, exactly as added."""
        raw = await self.client.get(self._key, [])
        if not isinstance(raw, list):
            raise TypeError(
                f"BotWireMemory: key {self._key!r} in namespace {self._namespace!r} holds a "
                f"{type(raw).__name__}, not the list of memories; use another key= or delete it"
            )
        return [decode_content(item) for item in raw if isinstance(item, dict)]

    async def query(
        self,
        query: str | MemoryContent = "",
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> MemoryQueryResult:
        """Memories sharing words with ``query``, best first; with ``match="all"`` every memory,
        oldest first, as ``ListMemory`` (see the class doc).

        Keyword ``max_results`` overrides the configured limit for this call (``"words"``).
        """
        items = await self.contents()
        if self._match == "all":  # ListMemory: every memory, the query ignored
            return MemoryQueryResult(results=items)
        limit = int(kwargs.get("max_results", self._max_results))
        text = query if isinstance(query, str) else searchable_text(query)
        wanted = words(text)
        if not wanted:
            return MemoryQueryResult(results=items[-limit:])
        scored = [
            (overlap_score(wanted, searchable_text(item)), index, item)
            for index, item in enumerate(items)
        ]
        best = sorted((s for s in scored if s[0] > 0), key=lambda s: (s[0], s[1]), reverse=True)
        return MemoryQueryResult(
            results=[
                item.model_copy(update={"metadata": {**(item.metadata or {}), "score": score}})
                for score, _, item in best[:limit]
            ]
        )

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        """Add the memories relevant to the last message as one ``SystemMessage``."""
        text = _last_text(await model_context.get_messages())
        found = (await self.query(text)).results if text else []
        if not found:
            found = (await self.query("")).results
        if not found:
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        lines = "\n".join(f"{i}. {render_content(m)}" for i, m in enumerate(found, 1))
        order = " (in chronological order)" if self._match == "all" else ""  # ListMemory's words
        await model_context.add_message(
            SystemMessage(content=f"\nRelevant memory content{order}:\n{lines}\n")
        )
        return UpdateContextResult(memories=MemoryQueryResult(results=found))

    async def clear(self) -> None:
        """Delete every memory (the list key); other keys in the namespace stay."""
        await self.client.delete(self._key)

    async def close(self) -> None:
        """Close the botwire client if this memory opened it."""
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- Component -------------------------------------------------------------------------

    def _to_config(self) -> BotWireMemoryConfig:
        if self._url_unknown:
            warnings.warn(
                "BotWireMemory.dump_component(): built from memory=... without url=, so the "
                "config has no URL and a loaded copy uses BOTWIRE_URL; pass url= as well",
                UserWarning,
                stacklevel=3,
            )
        if self._token is not None:
            warnings.warn(
                f"BotWireMemory.dump_component(): the token is not written to the config; "
                f"set {self._token_env} where the component is loaded",
                UserWarning,
                stacklevel=3,
            )
        return BotWireMemoryConfig(
            namespace=self._namespace,
            url=self._url,
            key=self._key,
            max_results=self._max_results,
            match=self._match,
            name=self._name,
            token_env=self._token_env,
        )

    @classmethod
    def _from_config(cls, config: BotWireMemoryConfig) -> Self:
        return cls(
            config.namespace,
            url=config.url,
            key=config.key,
            max_results=config.max_results,
            match=config.match,
            name=config.name,
            token_env=config.token_env,
        )
