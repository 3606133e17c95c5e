"""botwire for AutoGen: a persistent ``Memory`` and agent/team state that survives invocations.

- :class:`BotWireMemory` — ``autogen_core.memory.Memory`` (and a ``Component``) kept in botwire.
- :func:`save_state` / :func:`load_state` / :func:`delete_state` — keep an ``AssistantAgent``'s
  or a team's ``save_state()`` under a key and resume it in the next invocation.

Example:
    >>> from botwire_autogen import BotWireMemory, load_state, save_state
    >>> memory = BotWireMemory("user-alice")
    >>> agent = AssistantAgent("assistant", model_client, memory=[memory])  # doctest: +SKIP
    >>> await load_state(memory, "assistant-state", agent)  # doctest: +SKIP
    >>> await agent.run(task="hi")  # doctest: +SKIP
    >>> await save_state(memory, "assistant-state", agent)  # doctest: +SKIP
"""

from botwire_autogen._memory import BotWireMemory, BotWireMemoryConfig
from botwire_autogen._state import HasState, MemoryLike, delete_state, load_state, save_state

__all__ = [
    "BotWireMemory",
    "BotWireMemoryConfig",
    "HasState",
    "MemoryLike",
    "delete_state",
    "load_state",
    "save_state",
]
