"""``BotWireRunStore``: park a paused run's ``RunState`` and resume it elsewhere (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents import RunState

from botwire import BotWireError, Conflict
from botwire_openai_agents._clients import async_client, with_context

if TYPE_CHECKING:
    from agents import Agent, RunResult, RunResultStreaming

    from botwire import AsyncMemory, Memory

__all__ = ["DEFAULT_RUN_NAMESPACE", "RUN_KEY_PREFIX", "BotWireRunStore"]

#: A parked run lives under ``RUN_KEY_PREFIX + run_id``.
RUN_KEY_PREFIX = "openai-agents/run/"
DEFAULT_RUN_NAMESPACE = "openai-agents-runs"


class BotWireRunStore:
    """Keep paused runs (tool calls awaiting human approval) between invocations, under a TTL.

    A run that stops on ``result.interruptions`` is parked with :meth:`park`; the approval
    arrives later in another invocation, which calls :meth:`resume` to get the ``RunState``
    back, approves or rejects, and runs on::

        runs = BotWireRunStore("my-app", ttl=3600)
        result = await Runner.run(agent, text, session=session)
        if result.interruptions:
            await runs.park(run_id, result)            # invocation 1: ask the human
        ...
        state = await runs.resume(agent, run_id)      # invocation 2: the human said yes
        if state is None: ...                         # expired, or resumed already
        for item in state.get_interruptions():
            state.approve(item)
        result = await Runner.run(agent, state, session=session)

    :meth:`resume` claims the parked run (a conditional delete), so two approvals racing for
    one run resume it once: the other gets ``None``. The snapshot holds the conversation and
    tool arguments: the SDK asks to keep it on the server, which is what this store is.
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        ttl: float | None = 24 * 3600,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(
                f"BotWireRunStore: ttl must be a positive number of seconds or None, got {ttl!r}"
            )
        self.ttl = ttl
        self._clients = async_client(
            namespace,
            memory,
            url=url,
            token=token,
            default_namespace=DEFAULT_RUN_NAMESPACE,
            adapter="BotWireRunStore",
        )

    @property
    def namespace(self) -> str:
        """The botwire namespace holding parked runs."""
        return self._clients.namespace

    def _key(self, run_id: str) -> str:
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"BotWireRunStore needs a non-empty string run_id, got {run_id!r}")
        return RUN_KEY_PREFIX + run_id

    def _context(self, exc: BaseException, run_id: str, operation: str) -> BaseException:
        return with_context(
            exc, f"while {operation} paused run {run_id!r} (botwire namespace {self.namespace!r})"
        )

    async def park(
        self,
        run_id: str,
        state: RunState[Any, Any] | RunResult | RunResultStreaming,
        *,
        ttl: float | None = None,
        **to_json: Any,
    ) -> None:
        """Store a paused run (a ``RunState``, or the result that paused) under ``run_id``.

        ``ttl`` overrides the store's; extra keyword arguments go to ``RunState.to_json``
        (``context_serializer=...`` for a non-dict run context).
        """
        key = self._key(run_id)
        run_state = state if isinstance(state, RunState) else state.to_state()
        snapshot = run_state.to_json(**to_json)
        try:
            await self._clients.aio.set(key, snapshot, ttl=ttl if ttl is not None else self.ttl)
        except BotWireError as exc:
            raise self._context(exc, run_id, "parking") from None

    async def resume(
        self, agent: Agent[Any], run_id: str, *, claim: bool = True, **from_json: Any
    ) -> RunState[Any, Any] | None:
        """The parked run as a ``RunState`` for ``agent``, or ``None`` if there is none (never
        parked, expired, or already resumed).

        With ``claim`` (the default) the snapshot is removed in the same step it is read,
        conditionally on its version, so exactly one of several racing invocations gets it.
        Extra keyword arguments go to ``RunState.from_json`` (``context_override=...``).
        """
        key = self._key(run_id)
        try:
            entry = await self._clients.aio.entry(key)
            if entry is None:
                return None
            if claim:
                try:
                    await self._clients.aio.delete(key, if_version=entry.version)
                except Conflict:
                    return None  # another invocation resumed (or re-parked) it first
                if not isinstance(entry.value, dict):
                    return None
        except BotWireError as exc:
            raise self._context(exc, run_id, "resuming") from None
        return await RunState.from_json(agent, entry.value, **from_json)

    async def discard(self, run_id: str) -> bool:
        """Forget a parked run; whether it existed."""
        try:
            return await self._clients.aio.delete(self._key(run_id))
        except BotWireError as exc:
            raise self._context(exc, run_id, "discarding") from None

    async def aclose(self) -> None:
        """Close the clients this store made."""
        await self._clients.aclose()
