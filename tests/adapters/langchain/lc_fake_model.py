"""A scripted LangChain chat model for tests and child processes (no network).

``ScriptedChatModel`` is ``GenericFakeChatModel`` plus ``bind_tools`` (returns
itself, so tool-calling loops work) and a record of every prompt it was given, so a
test can check that the stored history really reached the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the scripted messages in order; records each prompt."""

    prompts: ClassVar[list[list[BaseMessage]]] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        ScriptedChatModel.prompts.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def scripted(*replies: AIMessage | str) -> ScriptedChatModel:
    """A fresh model answering ``replies`` in order."""
    return ScriptedChatModel(messages=iter(replies))
