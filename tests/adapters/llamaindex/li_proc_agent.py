"""Child process: a LlamaIndex FunctionAgent turn whose memory lives in botwire.

usage: li_proc_agent.py NAMESPACE SESSION (buffer|memory) (turn1|turn2)

buffer: ChatMemoryBuffer over BotWireChatStore.
memory: llama_index.core.memory.Memory over BotWireAsyncDBChatStore.
turn1: the user states a fact; the scripted LLM calls ``remember`` then answers.
turn2: the user asks; the LLM's prompt shows what only the store can tell it.
Prints one JSON line: the answer, the LLM's last prompt, the stored messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.tools import FunctionTool

from botwire_llamaindex import BotWireAsyncDBChatStore, BotWireChatStore

SEEN: list[list[list[str]]] = []


def remember(fact: str) -> str:
    """Remember a fact about the user."""
    return f"stored: {fact}"


def make_llm(step: str) -> MockFunctionCallingLLM:
    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        SEEN.append([[m.role.value, m.content or ""] for m in messages])
        if step == "turn1" and messages[-1].role != MessageRole.TOOL:
            return ChatMessage(
                role=MessageRole.ASSISTANT,
                blocks=[
                    ToolCallBlock(
                        tool_call_id="c1", tool_name="remember", tool_kwargs={"fact": "likes tea"}
                    )
                ],
            )
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content="Noted: tea." if step == "turn1" else "You like tea.",
        )

    return MockFunctionCallingLLM(response_generator=respond)


def make_memory(namespace: str, session: str, kind: str) -> Any:
    if kind == "buffer":
        return ChatMemoryBuffer.from_defaults(
            chat_store=BotWireChatStore(namespace), chat_store_key=session, token_limit=100_000
        )
    return Memory.from_defaults(
        session_id=session, chat_store=BotWireAsyncDBChatStore(namespace), token_limit=100_000
    )


async def main() -> None:
    namespace, session, kind, step = sys.argv[1:5]
    memory = make_memory(namespace, session, kind)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(remember)],
        llm=make_llm(step),
        system_prompt="You remember facts.",
    )
    question = "I like tea." if step == "turn1" else "What do I like?"
    result = await agent.run(user_msg=question, memory=memory)
    # What a later invocation would load: a new memory object over the same store.
    stored = make_memory(namespace, session, kind)
    messages = await stored.aget_all() if kind == "memory" else stored.get_all()
    rows = [
        [
            m.role.value,
            m.content or "",
            [b.tool_name for b in m.blocks if isinstance(b, ToolCallBlock)],
        ]
        for m in messages
    ]
    print(json.dumps({"answer": str(result), "seen": SEEN[-1], "history": rows}))


if __name__ == "__main__":
    asyncio.run(main())
